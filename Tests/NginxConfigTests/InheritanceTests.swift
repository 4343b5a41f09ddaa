import Testing
@testable import NginxConfig

/// nginx's inheritance: a value set at an outer level reaches inner levels unless overridden;
/// for array directives one setting at a level drops every inherited one.
@Suite struct InheritanceTests {
    static let config = """
    events {}
    http {
        root /srv/http;
        sendfile on;
        add_header X-Http 1;
        add_header X-Http-2 2;
        client_max_body_size 1m;
        server {
            listen 8080;
            root /srv/server;
            location / {
                sendfile off;
                location /inner/ {
                    add_header X-Inner 3;
                }
            }
            location /static/ {
                add_header X-Static 4;
            }
        }
    }
    """

    func load() throws -> Configuration {
        let directory = TempConfigDirectory()
        directory.write("gantry.conf", Self.config)
        return try directory.load()
    }

    @Test func singleValuesInheritDownward() throws {
        let server = try #require(try load().http?.servers.first)
        let root = server.locations[0]
        let inner = root.nested[0]
        #expect(server.scope.effective("root")?.values == ["/srv/server"])
        #expect(inner.scope.effective("root")?.values == ["/srv/server"])
        #expect(try server.scope.flag("sendfile", default: false) == true)
        #expect(try root.scope.flag("sendfile", default: true) == false)
        #expect(try inner.scope.flag("sendfile", default: true) == false)
        #expect(try inner.scope.size("client_max_body_size", default: 0) == 1 << 20)
        #expect(try inner.scope.milliseconds("keepalive_timeout", default: 75_000) == 75_000)
    }

    @Test func arrayDirectivesAreReplacedNotMerged() throws {
        let server = try #require(try load().http?.servers.first)
        let root = server.locations[0]
        let inner = root.nested[0]
        let staticFiles = server.locations[1]
        #expect(root.scope.effectiveList("add_header").map(\.values) == [["X-Http", "1"], ["X-Http-2", "2"]])
        #expect(inner.scope.effectiveList("add_header").map(\.values) == [["X-Inner", "3"]])
        #expect(staticFiles.scope.effectiveList("add_header").map(\.values) == [["X-Static", "4"]])
    }

    @Test func scopesKnowTheirKind() throws {
        let configuration = try load()
        let http = try #require(configuration.http)
        #expect(configuration.main.kind == .main)
        #expect(http.scope.kind == .http)
        #expect(http.servers[0].scope.kind == .server)
        #expect(http.servers[0].locations[0].nested[0].scope.parent === http.servers[0].locations[0].scope)
    }
}
