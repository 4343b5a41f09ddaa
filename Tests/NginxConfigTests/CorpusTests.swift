import Testing
@testable import NginxConfig

/// The corpus configurations through the loader alone (the e2e tests add the real binary and nginx).
@Suite struct CorpusTests {
    static let corpus = repositoryRoot + "/nginx-compat/corpus"

    static let accepted = [
        "seed-article/gantry.conf", "debian-stock/nginx.conf", "flask/gantry.conf", "gunicorn-deploy/nginx.conf",
        "django-unix-socket/nginx.conf", "upstream-balanced/gantry.conf", "app-pool/gantry.conf",
    ]

    @Test(arguments: accepted)
    func loads(_ file: String) throws {
        let configuration = try ConfigurationLoader(configFile: Self.corpus + "/" + file).load()
        #expect(configuration.http != nil)
        #expect(configuration.http?.servers.isEmpty == false)
    }

    @Test func seedArticleModel() throws {
        let configuration = try ConfigurationLoader(configFile: Self.corpus + "/seed-article/gantry.conf").load()
        let server = try #require(configuration.http?.servers.first)
        #expect(server.listens.map(\.endpoint) == [.tcp(host: nil, port: 80)])
        #expect(server.names == [.exact("example.com")])
        #expect(server.locations.map(\.match) == [.prefix("/static", stopsRegexSearch: false), .prefix("/", stopsRegexSearch: false)])
        #expect(server.locations[0].scope.own("alias")?.values == ["/path/to/static/files"])
        #expect(server.locations[1].scope.effectiveList("proxy_set_header").map(\.values) == [["Host", "$host"], ["X-Real-IP", "$remote_addr"]])
    }

    @Test func debianStockKeepsItsIncludeStructure() throws {
        let configuration = try ConfigurationLoader(configFile: Self.corpus + "/debian-stock/nginx.conf").load()
        let server = try #require(configuration.http?.servers.first)
        #expect(server.location.file.hasSuffix("/debian-stock/sites-enabled/default"))
        #expect(server.listens.map(\.isDefaultServer) == [true, true])
        #expect(server.listens.map(\.endpoint) == [.tcp(host: nil, port: 80), .tcp(host: "::", port: 80)])
        // (As non-root, nginx's "the \"user\" directive makes sense only if …" warning comes first.)
        #expect(configuration.warnings.map(\.message).filter { $0.contains("ssl") } == [
            #""ssl_prefer_server_ciphers" directive has no effect in gantry (swift-nio-ssl's defaults apply)"#,
        ])
    }

    @Test func legacyGzipTuningIsAccepted() throws {
        _ = try ConfigurationLoader(configFile: Self.corpus + "/legacy-gzip/nginx.conf").load()
    }

    @Test func refusedByName() {
        #expect(throws: ConfigError(#""fastcgi_param" is not supported by gantry"#, at: SourceLocation(file: Self.corpus + "/php-fpm/fastcgi_params", line: 2))) {
            _ = try ConfigurationLoader(configFile: Self.corpus + "/php-fpm/nginx.conf").load()
        }
    }
}
