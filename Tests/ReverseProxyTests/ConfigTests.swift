import Foundation
import Balancer
import HTTPFront
import NIOHTTP1
import NginxConfig
import Testing
@testable import ReverseProxy

/// Loads a whole config from text through the real loader (directive table, model).
func loadConfiguration(_ text: String) throws -> Configuration {
    let path = "/tmp/gantry-proxy-test-\(UInt32.random(in: 0...UInt32.max)).conf"
    let file = fopen(path, "w")!
    fputs(text, file)
    fclose(file)
    defer { remove(path) }
    return try ConfigurationLoader(configFile: path).load()
}

func locationScope(_ configuration: Configuration, _ index: Int = 0) -> (ConfigScope, LocationMatch) {
    let location = configuration.http!.servers[0].locations[index]
    return (location.scope, location.match)
}

@Suite struct ProxyPassTargetTests {
    @Test func forms() throws {
        let plain = try ProxyPassTarget.parse("http://127.0.0.1:8000")
        #expect(plain.endpoint == .host("127.0.0.1", port: 8000))
        #expect(plain.uri == nil)
        #expect(plain.proxyHost == "127.0.0.1:8000")

        let withURI = try ProxyPassTarget.parse("http://backend/app/")
        #expect(withURI.endpoint == .host("backend", port: nil))
        #expect(withURI.uri == "/app/")
        #expect(withURI.proxyHost == "backend")

        let unix = try ProxyPassTarget.parse("http://unix:/run/app.sock:")
        #expect(unix.endpoint == .unix(path: "/run/app.sock"))
        #expect(unix.uri == nil)
        #expect(unix.proxyHost == "localhost")

        let unixURI = try ProxyPassTarget.parse("http://unix:/run/app.sock:/api/")
        #expect(unixURI.uri == "/api/")

        let v6 = try ProxyPassTarget.parse("http://[::1]:9000/")
        #expect(v6.endpoint == .host("::1", port: 9000))
        #expect(try ProxyPassTarget.parse("http://h:80").proxyHost == "h")
    }

    @Test func badURLs() {
        #expect(throws: ProxyPassTarget.ParseError.self) { try ProxyPassTarget.parse("ftp://x") }
        #expect(throws: ProxyPassTarget.ParseError.self) { try ProxyPassTarget.parse("https://x") }
        #expect(throws: ProxyPassTarget.ParseError.self) { try ProxyPassTarget.parse("http://h:99999") }
        #expect(throws: ProxyPassTarget.ParseError.self) { try ProxyPassTarget.parse("http://") }
    }

    @Test func uriReplacement() {
        // location /one/ { proxy_pass http://h/two/; }  /one/a b?x=1 → /two/a%20b?x=1
        #expect(UpstreamURI.make(targetURI: "/two/", locationPrefix: "/one/", requestTarget: "/one/a%20b?x=1",
                                 normalizedURI: "/one/a b", args: "x=1") == "/two/a%20b?x=1")
        // Without a URI part the client's target goes as sent.
        #expect(UpstreamURI.make(targetURI: nil, locationPrefix: "/one/", requestTarget: "/one/%7Eu?x",
                                 normalizedURI: "/one/~u", args: "x") == "/one/%7Eu?x")
        // proxy_pass http://h/; in location /api → /api/v1 becomes //v1 as nginx does.
        #expect(UpstreamURI.make(targetURI: "/", locationPrefix: "/api", requestTarget: "/api/v1",
                                 normalizedURI: "/api/v1", args: "") == "//v1")
    }
}

@Suite struct HeaderRuleTests {
    @Test func requestHeadersFollowNginx() {
        var client = HTTPHeaders()
        client.add(name: "Host", value: "example.com")
        client.add(name: "User-Agent", value: "t")
        client.add(name: "Connection", value: "keep-alive, X-Hop")
        client.add(name: "X-Hop", value: "1")
        client.add(name: "Keep-Alive", value: "300")
        client.add(name: "Content-Length", value: "5")
        client.add(name: "X-Remove", value: "me")
        let set: [(name: String, value: String)] = [
            ("Host", "example.com"), ("X-Real-IP", "10.0.0.1"), ("X-Remove", ""),
            ("Connection", "close"), ("Content-Length", ""), ("Transfer-Encoding", ""),
            ("TE", ""), ("Keep-Alive", ""), ("Expect", ""), ("Upgrade", ""),
        ]
        let out = HeaderRules.upstreamRequestHeaders(setHeaders: set, client: client, passClientHeaders: true, framing: .length(5))
        #expect(out["host"] == ["example.com"])
        #expect(out["x-real-ip"] == ["10.0.0.1"])
        #expect(out["connection"] == ["close"])
        #expect(out["content-length"] == ["5"])
        #expect(out["user-agent"] == ["t"])
        #expect(out["x-remove"].isEmpty)
        #expect(out["x-hop"].isEmpty)
        #expect(out["keep-alive"].isEmpty)

        let bare = HeaderRules.upstreamRequestHeaders(setHeaders: set, client: client, passClientHeaders: false, framing: .chunked)
        #expect(bare["user-agent"].isEmpty)
        #expect(bare["transfer-encoding"] == ["chunked"])
    }

    @Test func responseHeadersHideAndRewrite() {
        var upstream = HTTPHeaders()
        upstream.add(name: "Server", value: "gunicorn")
        upstream.add(name: "Date", value: "x")
        upstream.add(name: "Connection", value: "close")
        upstream.add(name: "Transfer-Encoding", value: "chunked")
        upstream.add(name: "X-Accel-Redirect", value: "/x")
        upstream.add(name: "X-Secret", value: "s")
        upstream.add(name: "Location", value: "http://127.0.0.1:8000/two/page")
        upstream.add(name: "Set-Cookie", value: "a=1")
        var hidden = HeaderRules.hiddenByDefault
        hidden.insert("x-secret")
        let out = HeaderRules.clientResponseHeaders(upstream: upstream, status: 302, hidden: hidden, redirects: [
            ProxyRedirectRule(from: "http://127.0.0.1:8000/two/", to: "/one/"),
        ])
        #expect(out["server"].isEmpty && out["date"].isEmpty && out["connection"].isEmpty)
        #expect(out["transfer-encoding"].isEmpty && out["x-accel-redirect"].isEmpty && out["x-secret"].isEmpty)
        #expect(out["location"] == ["/one/page"])
        #expect(out["set-cookie"] == ["a=1"])
    }

    @Test func proxyTemplateVariables() throws {
        var headers = HTTPHeaders()
        headers.add(name: "X-Forwarded-For", value: "1.1.1.1")
        let variables = RequestVariables(method: "GET", requestURI: "/", uri: "/", args: "", version: .http1_1,
                                         headers: headers, remoteAddress: "10.0.0.9", host: "example.com")
        let proxy = ProxyVariables(proxyHost: "backend", proxyPort: "80")
        #expect(try ProxyTemplate("$proxy_add_x_forwarded_for").render(variables, proxy: proxy) == "1.1.1.1, 10.0.0.9")
        #expect(try ProxyTemplate("$host|$proxy_host:$proxy_port").render(variables, proxy: proxy) == "example.com|backend:80")
        #expect(try ProxyTemplate("${proxy_host}x").render(variables, proxy: proxy) == "backendx")
        #expect(throws: VariableTemplate.CompileError.self) { try ProxyTemplate("$nope") }
    }
}

@Suite struct UpstreamConfigTests {
    @Test func serversAndParameters() throws {
        let configuration = try loadConfiguration("""
        events {}
        http {
            upstream app {
                least_conn;
                server 127.0.0.1:8001 weight=3 max_fails=2 fail_timeout=5s max_conns=10;
                server unix:/tmp/app.sock backup;
                server example.com down;
                keepalive 16;
                keepalive_timeout 30s;
                health_check uri=/health interval=2s fails=2 passes=3;
                queue 20 timeout=5s;
            }
            server { listen 8080; location / { proxy_pass http://app; } }
        }
        """)
        let block = configuration.http!.upstreams[0]
        let definition = try UpstreamDefinition.parse(name: block.name, scope: block.scope, location: block.location)
        #expect(definition.method == .leastConn)
        #expect(definition.servers.map(\.address) == [.tcp(host: "127.0.0.1", port: 8001), .unix(path: "/tmp/app.sock"),
                                                      .tcp(host: "example.com", port: 80)])
        let first = definition.servers[0].peer
        #expect(first.weight == 3 && first.maxFails == 2 && first.failTimeout == 5000 && first.maxConns == 10)
        #expect(definition.servers[1].peer.isBackup)
        #expect(definition.servers[2].peer.isDown)
        #expect(definition.keepalive == 16 && definition.keepaliveTimeout == 30_000)
        #expect(definition.healthCheck == HealthCheckSettings(uri: "/health", interval: 2000, fails: 2, passes: 3, timeout: 2000))
        #expect(definition.queue?.capacity == 20 && definition.queue?.timeout == 5000)
    }

    @Test func backupIsRefusedWithHash() throws {
        let configuration = try loadConfiguration("""
        events {}
        http {
            upstream app { ip_hash; server 127.0.0.1:1; server 127.0.0.1:2 backup; }
            server { listen 8080; location / { proxy_pass http://app; } }
        }
        """)
        let block = configuration.http!.upstreams[0]
        #expect(throws: ConfigError.self) {
            try UpstreamDefinition.parse(name: block.name, scope: block.scope, location: block.location)
        }
    }

    @Test func locationSettingsAndInheritance() throws {
        let configuration = try loadConfiguration("""
        events {}
        http {
            proxy_set_header X-From-Http 1;
            proxy_read_timeout 5s;
            server {
                listen 8080;
                location /one/ {
                    proxy_pass http://127.0.0.1:9000/two/;
                    proxy_set_header Host $host;
                    proxy_set_header X-Real-IP $remote_addr;
                    proxy_http_version 1.1;
                    proxy_next_upstream error timeout http_503 non_idempotent;
                    proxy_hide_header X-Secret;
                    proxy_pass_header Server;
                }
                location /inherit { proxy_pass http://127.0.0.1:9000; }
                location ~ ^/re { proxy_pass http://127.0.0.1:9000; }
            }
        }
        """)
        let (scope, match) = locationScope(configuration, 0)
        let settings = try #require(try ProxySettings.compile(location: scope, match: match))
        let names = settings.setHeaders.map { $0.name.lowercased() }
        // A level that sets any proxy_set_header drops the inherited ones.
        #expect(!names.contains("x-from-http"))
        #expect(names.prefix(2) == ["host", "x-real-ip"])
        #expect(names.contains("connection"))
        #expect(settings.httpVersion == .http1_1)
        #expect(settings.readTimeout == 5000)
        #expect(settings.nextUpstream.conditions == [.error, .timeout, .http503, .nonIdempotent])
        #expect(settings.hiddenResponseHeaders.contains("x-secret"))
        #expect(!settings.hiddenResponseHeaders.contains("server"))
        #expect(settings.redirects == [ProxyRedirectRule(from: "http://127.0.0.1:9000/two/", to: "/one/")])

        let (inheritScope, inheritMatch) = locationScope(configuration, 1)
        let inherited = try #require(try ProxySettings.compile(location: inheritScope, match: inheritMatch))
        #expect(inherited.setHeaders.map { $0.name.lowercased() }.contains("x-from-http"))
        #expect(inherited.setHeaders.first { $0.name == "Host" }?.value.source == "$proxy_host")
        #expect(inherited.httpVersion == .http1_0)
        #expect(inherited.redirects == [ProxyRedirectRule(from: "http://127.0.0.1:9000/", to: "/")])
    }

    @Test func uriPartInRegexLocationIsAnError() throws {
        let configuration = try loadConfiguration("""
        events {}
        http { server { listen 8080; location ~ ^/re { proxy_pass http://127.0.0.1:9000/x/; } } }
        """)
        let (scope, match) = locationScope(configuration, 0)
        #expect(throws: ConfigError.self) { try ProxySettings.compile(location: scope, match: match) }
    }
}

@Suite struct UpstreamGroupTests {
    @Test func replacingServersDrainsTheOldList() throws {
        var definition = UpstreamDefinition(name: "pool")
        definition.servers = [(.unix(path: "/old/1.sock"), PeerConfiguration(name: "unix:/old/1.sock")),
                              (.unix(path: "/old/2.sock"), PeerConfiguration(name: "unix:/old/2.sock"))]
        let group = UpstreamGroup(definition: definition, logger: .init(label: "test"))
        var running = group.beginAttempt(clientAddress: [0, 0, 0], hashKey: "", maxTries: 0)
        let old = try #require(group.pick(&running))
        #expect(old == .unix(path: "/old/1.sock"))

        group.replaceServers([(.unix(path: "/new/1.sock"), PeerConfiguration(name: "unix:/new/1.sock"))])
        #expect(group.addresses == [.unix(path: "/new/1.sock")])
        #expect(group.generationCount == 2)  // the old list drains its running request
        var fresh = group.beginAttempt(clientAddress: [0, 0, 0], hashKey: "", maxTries: 0)
        #expect(group.pick(&fresh) == .unix(path: "/new/1.sock"))
        group.release(&fresh, failed: false)
        group.endAttempt(fresh)

        // The running request may still retry on the old list.
        group.release(&running, failed: true)
        #expect(group.pick(&running) == .unix(path: "/old/2.sock"))
        group.release(&running, failed: false)
        #expect(group.generationCount == 2)
        group.endAttempt(running)
        #expect(group.generationCount == 1)
    }

    @Test func appPoolDefinition() throws {
        let configuration = try loadConfiguration("""
        events {}
        http {
            app_pool shop { wsgi app:application; workers 2; keepalive 8; queue 50 timeout=3s; }
            server { listen 8080; location / { proxy_pass http://shop; } }
        }
        """)
        let pool = configuration.http!.appPools[0]
        let definition = try UpstreamDefinition.appPool(name: pool.name, scope: pool.scope, location: pool.location,
                                                        sockets: ["/run/w1.sock", "/run/w2.sock"], maxConnsPerServer: 1)
        #expect(definition.method == .leastConn)
        #expect(definition.keepalive == 8)
        #expect(definition.queue?.capacity == 50)
        #expect(definition.servers.map(\.address) == [.unix(path: "/run/w1.sock"), .unix(path: "/run/w2.sock")])
        #expect(definition.servers.allSatisfy { $0.peer.maxConns == 1 })
        let module = try ReverseProxyModule(configuration: configuration, additional: [definition])
        #expect(module.groups["shop"] != nil)
    }
}
