import Testing
@testable import NginxConfig

@Suite struct ModelTests {
    func load(_ body: String, globals: String? = nil) throws(ConfigError) -> Configuration {
        let directory = TempConfigDirectory()
        directory.write("gantry.conf", "events {}\nhttp {\n\(body)\n}\n")
        return try directory.load(globals: globals)
    }

    @Test func listenForms() throws {
        let server = try #require(try load("""
        server {
            listen 8080;
            listen 127.0.0.1:8081 default_server;
            listen [::]:8082 ipv6only=on;
            listen [::1]:8083;
            listen *:8084 backlog=511 reuseport;
            listen 127.0.0.2;
            listen localhost:8085;
            listen unix:/run/gantry.sock;
        }
        """).http?.servers.first)
        let endpoints = server.listens.map(\.endpoint)
        #expect(endpoints == [
            .tcp(host: nil, port: 8080), .tcp(host: "127.0.0.1", port: 8081), .tcp(host: "::", port: 8082),
            .tcp(host: "::1", port: 8083), .tcp(host: nil, port: 8084), .tcp(host: "127.0.0.2", port: 80),
        ] + server.listens.dropFirst(6).dropLast().map(\.endpoint) + [.unix(path: "/run/gantry.sock")])
        #expect(server.listens.dropFirst(6).dropLast().allSatisfy {
            if case .tcp(_, 8085) = $0.endpoint { return true } else { return false }
        })
        #expect(server.listens.dropFirst(6).dropLast().contains { $0.endpoint == .tcp(host: "127.0.0.1", port: 8085) })
        #expect(server.listens[1].isDefaultServer)
        #expect(!server.listens[0].isDefaultServer)
        #expect(server.listens[2].parameters == ["ipv6only=on"])
        #expect(server.listens[4].parameters == ["backlog=511", "reuseport"])
        #expect(server.listens[0].location.line == 4)
    }

    @Test func serverWithoutListenGetsNginxDefault() throws {
        let server = try #require(try load("server { server_name a; }").http?.servers.first)
        #expect(server.listens.count == 1)
        if case .tcp(nil, let port) = server.listens[0].endpoint {
            #expect(port == 80 || port == 8000)
        } else {
            Issue.record("expected *:80 or *:8000")
        }
    }

    @Test func serverNameForms() throws {
        let server = try #require(try load("""
        server {
            listen 80;
            server_name example.com *.example.org .example.net www.example.* ~^(?<sub>.+)\\.example\\.io$ "" _ EXAMPLE.Info;
        }
        """).http?.servers.first)
        #expect(server.names == [
            .exact("example.com"), .leadingWildcard(".example.org"), .leadingWildcard(".example.net"),
            .trailingWildcard("www.example."), .regex(#"^(?<sub>.+)\.example\.io$"#), .exact(""), .exact("_"), .exact("example.info"),
        ])
    }

    @Test func badServerNameRegexIsRefused() throws {
        #expect(throws: ConfigError.self) { try load("server { listen 80; server_name ~^(a; }") }
        do {
            _ = try load("server { listen 80; server_name ~^(a; }")
        } catch {
            #expect(error.message.hasPrefix("pcre2_compile() failed: "))
            #expect(error.message.hasSuffix(#" in "^(a""#))
        }
    }

    @Test func locationForms() throws {
        let server = try #require(try load("""
        server {
            listen 80;
            location = /exact {}
            location =/exact2 {}
            location /prefix {}
            location ^~ /static/ {}
            location ~ \\.php$ {}
            location ~* \\.(png|jpg)$ {}
            location ~*\\.gif$ {}
            location @fallback {}
            location /outer/ {
                location /outer/inner/ {}
                location ~ \\.txt$ {}
            }
        }
        """).http?.servers.first)
        #expect(server.locations.map(\.match) == [
            .exact("/exact"), .exact("/exact2"), .prefix("/prefix", stopsRegexSearch: false),
            .prefix("/static/", stopsRegexSearch: true), .regex(#"\.php$"#, caseInsensitive: false),
            .regex(#"\.(png|jpg)$"#, caseInsensitive: true), .regex(#"\.gif$"#, caseInsensitive: true),
            .named("fallback"), .prefix("/outer/", stopsRegexSearch: false),
        ])
        #expect(server.locations[8].nested.map(\.match) == [.prefix("/outer/inner/", stopsRegexSearch: false), .regex(#"\.txt$"#, caseInsensitive: false)])
        #expect(server.locations[8].nested[0].location.line == 14)
    }

    @Test func upstreamsKeepTheirScope() throws {
        let http = try #require(try load("""
        upstream app {
            least_conn;
            server 127.0.0.1:8001 weight=3;
            server unix:/run/app.sock backup;
            server backend.internal:8000;
            keepalive 16;
        }
        """).http)
        let upstream = try #require(http.upstreams.first)
        #expect(upstream.name == "app")
        #expect(upstream.location.line == 3)
        #expect(upstream.scope.kind == .upstream)
        #expect(upstream.scope.effectiveList("server").map(\.values) == [
            ["127.0.0.1:8001", "weight=3"], ["unix:/run/app.sock", "backup"], ["backend.internal:8000"],
        ])
        #expect(upstream.scope.own("least_conn") != nil)
        #expect(try upstream.scope.number("keepalive", default: 0) == 16)
    }

    @Test func proxyPassHostsAreNotResolvedAtLoad() throws {
        // nginx says `host not found in upstream`; the proxy resolves when it connects.
        let http = try #require(try load("server { listen 80; location / { proxy_pass http://backend.invalid:8000; } }").http)
        #expect(http.servers[0].locations[0].scope.own("proxy_pass")?.values == ["http://backend.invalid:8000"])
    }

    @Test func appPoolsAreGroupsWithScopes() throws {
        let http = try #require(try load("""
        app_pool shop {
            wsgi app:application;
            chdir /srv/shop;
            workers 4;
            timeout 30s;
            env A=1;
            env B=2;
            queue 100 timeout=5s;
        }
        server {
            listen 80;
            location / { proxy_pass http://shop; }
        }
        """).http)
        let pool = try #require(http.appPools.first)
        #expect(pool.name == "shop")
        #expect(pool.scope.own("wsgi")?.values == ["app:application"])
        #expect(try pool.scope.number("workers", default: 1) == 4)
        #expect(try pool.scope.seconds("timeout", default: 0) == 30)
        #expect(pool.scope.effectiveList("env").map(\.values) == [["A=1"], ["B=2"]])
    }

    @Test func commandLineDirectivesComeFirstInMain() throws {
        let configuration = try load("", globals: "daemon off; worker_processes 2;")
        #expect(configuration.main.own("daemon")?.location == .commandLine)
        #expect(try configuration.main.flag("daemon", default: true) == false)
        #expect(configuration.directives.first?.name == "daemon")
    }

    @Test func tlsSettingsGantryDoesNotApplyWarn() throws {
        let configuration = try load("ssl_protocols TLSv1.2 TLSv1.3;\nssl_session_cache shared:SSL:10m;")
        #expect(configuration.warnings.map(\.message) == [#""ssl_session_cache" directive has no effect in gantry (swift-nio-ssl's defaults apply)"#])
        #expect(configuration.warnings.first?.location?.line == 4)
    }

    @Test func tlsValuesThatWouldOpenAHoleAreRefused() throws {
        #expect(try load("ssl_verify_client off;").warnings.isEmpty)
        for text in ["ssl_verify_client on;", "ssl_verify_client optional;", "ssl_early_data on;", "ssl_reject_handshake on;"] {
            #expect(throws: ConfigError.self) { try load(text) }
        }
    }

    @Test func conflictingServerNamesWarnWithoutLocation() throws {
        let configuration = try load("server { listen 80; server_name a; }\nserver { listen 80; server_name b a; }")
        #expect(configuration.warnings == [ConfigWarning(#"conflicting server name "a" on 0.0.0.0:80, ignored"#, at: nil)])
    }

    @Test func pathsAreResolvedAgainstThePrefix() throws {
        let directory = TempConfigDirectory()
        directory.write("conf/gantry.conf", "events {}\n")
        let plain = try ConfigurationLoader(configFile: directory.path + "/conf/gantry.conf").load()
        #expect(plain.prefix == directory.path + "/conf/")
        #expect(plain.fullPath("static") == directory.path + "/conf/static")
        #expect(plain.fullPath("/abs") == "/abs")
        let prefixed = try ConfigurationLoader(configFile: "conf/gantry.conf", prefix: directory.path).load()
        #expect(prefixed.configFile == directory.path + "/conf/gantry.conf")
        #expect(prefixed.prefix == directory.path + "/")
    }
}
