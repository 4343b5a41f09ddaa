import Testing
@testable import WSGI

private func head(_ uri: String, method: String = "GET", minor: Int = 1, _ headers: [(String, String)] = []) -> RequestHeadInfo {
    RequestHeadInfo(method: method, uri: uri, versionMajor: 1, versionMinor: minor, headers: headers.map { (name: $0.0, value: $0.1) })
}

private let loopback = PeerAddress.inet(ip: "127.0.0.1", port: 50000)
private let stranger = PeerAddress.inet(ip: "198.51.100.20", port: 40000)
private let tcpBind = WorkerBind.tcp(host: "127.0.0.1", port: 8000)
private func settings(root: String = "", trust: String = ForwardedTrust.gunicornDefault) throws -> EnvironSettings {
    EnvironSettings(rootPath: root, trust: try ForwardedTrust(parsing: trust))
}

@Test func basicCGIVariables() throws {
    let env = try CGIEnvironment.build(head: head("/a/b?x=1&y=%20", method: "POST", [("Host", "example.org"), ("Content-Type", "text/plain"),
                                                                          ("Content-Length", "3"), ("User-Agent", "t")]),
                                       peer: loopback, server: tcpBind, settings: settings())
    #expect(env.requestMethod == "POST")
    #expect(env.pathInfo == Array("/a/b".utf8))
    #expect(env.scriptName.isEmpty)
    #expect(env.queryString == "x=1&y=%20")
    #expect(env.rawURI == "/a/b?x=1&y=%20")
    #expect(env.serverProtocol == "HTTP/1.1")
    #expect(env.serverName == "127.0.0.1" && env.serverPort == "8000")
    #expect(env.remoteAddr == "127.0.0.1" && env.remotePort == "50000")
    #expect(env.urlScheme == "http")
    #expect(env.headers.contains(EnvironHeader(key: "CONTENT_TYPE", value: "text/plain")))
    #expect(env.headers.contains(EnvironHeader(key: "CONTENT_LENGTH", value: "3")))
    #expect(env.headers.contains(EnvironHeader(key: "HTTP_USER_AGENT", value: "t")))
    #expect(!env.headers.contains { $0.key == "HTTP_CONTENT_TYPE" || $0.key == "HTTP_CONTENT_LENGTH" })
}

@Test func pathIsPercentDecodedBytes() throws {
    let env = try CGIEnvironment.build(head: head("/caf%C3%A9/%2F%zz%"), peer: loopback, server: tcpBind, settings: settings())
    #expect(env.pathInfo == Array("/café//%zz%".utf8))
}

@Test func repeatedHeadersJoinAndUnderscoresDrop() throws {
    let env = try CGIEnvironment.build(head: head("/", [("X-Multi", "a"), ("x-multi", "b"), ("X_Multi", "spoof"), ("Accept", "*/*")]),
                                       peer: loopback, server: tcpBind, settings: settings())
    #expect(env.headers.filter { $0.key == "HTTP_X_MULTI" } == [EnvironHeader(key: "HTTP_X_MULTI", value: "a, b")])
    #expect(env.headers.count == 2)
}

@Test func absoluteFormTargetsAndFragments() {
    #expect(CGIEnvironment.splitTarget("http://host:1/p/q?z=1#frag") == ("/p/q", "z=1"))
    #expect(CGIEnvironment.splitTarget("https://host") == ("/", ""))
    #expect(CGIEnvironment.splitTarget("/x#y") == ("/x", ""))
    #expect(CGIEnvironment.splitTarget("?q") == ("/", "q"))
}

@Test func forwardedHeadersOnlyFromTrustedPeers() throws {
    let headers = [("X-Forwarded-For", "203.0.113.1, 10.0.0.2"), ("X-Forwarded-Proto", "https")]
    let trusted = try CGIEnvironment.build(head: head("/", headers), peer: loopback, server: tcpBind, settings: settings())
    #expect(trusted.remoteAddr == "10.0.0.2" && trusted.remotePort == nil && trusted.urlScheme == "https")
    let untrusted = try CGIEnvironment.build(head: head("/", headers), peer: stranger, server: tcpBind, settings: settings())
    #expect(untrusted.remoteAddr == "198.51.100.20" && untrusted.urlScheme == "http")
    let realIP = try CGIEnvironment.build(head: head("/", headers + [("X-Real-IP", "192.0.2.7")]), peer: .unix,
                                          server: .unix(path: "/s"), settings: settings())
    #expect(realIP.remoteAddr == "192.0.2.7")
    let everyone = try CGIEnvironment.build(head: head("/", headers), peer: stranger, server: tcpBind, settings: settings(trust: "*"))
    #expect(everyone.urlScheme == "https")
    let ssl = try CGIEnvironment.build(head: head("/", [("X-Forwarded-Ssl", "on")]), peer: loopback, server: tcpBind, settings: settings())
    #expect(ssl.urlScheme == "https")
}

@Test func trustListsAndNetworks() throws {
    let trust = try ForwardedTrust(parsing: "10.0.0.0/8, 192.168.1.5,::1, fd00::/8")
    #expect(trust.trusts(.inet(ip: "10.200.3.4", port: 1)))
    #expect(trust.trusts(.inet(ip: "192.168.1.5", port: 1)))
    #expect(!trust.trusts(.inet(ip: "192.168.1.6", port: 1)))
    #expect(trust.trusts(.inet(ip: "::1", port: 1)))
    #expect(trust.trusts(.inet(ip: "fd12::1", port: 1)))
    #expect(trust.trusts(.inet(ip: "::ffff:10.1.1.1", port: 1)))
    #expect(!trust.trusts(.inet(ip: "11.0.0.1", port: 1)))
    #expect(trust.trusts(.unix))
    #expect(throws: WorkerConfigurationError.self) { try ForwardedTrust(parsing: "not-an-ip") }
    #expect(throws: WorkerConfigurationError.self) { try ForwardedTrust(parsing: "10.0.0.0/33") }
}

@Test func rootPathAndScriptNameHeader() throws {
    let mounted = try CGIEnvironment.build(head: head("/app/x%20y"), peer: loopback, server: tcpBind, settings: settings(root: "/app/"))
    #expect(mounted.scriptName == Array("/app".utf8) && mounted.pathInfo == Array("/x y".utf8))
    let exact = try CGIEnvironment.build(head: head("/app"), peer: loopback, server: tcpBind, settings: settings(root: "/app"))
    #expect(exact.pathInfo.isEmpty)
    #expect(throws: EnvironError.self) {
        try CGIEnvironment.build(head: head("/application"), peer: loopback, server: tcpBind, settings: settings(root: "/app"))
    }
    let header = try CGIEnvironment.build(head: head("/sub/page", [("SCRIPT_NAME", "/sub")]), peer: loopback, server: tcpBind, settings: settings())
    #expect(header.scriptName == Array("/sub".utf8) && header.pathInfo == Array("/page".utf8))
    let ignored = try CGIEnvironment.build(head: head("/sub/page", [("SCRIPT_NAME", "/sub")]), peer: stranger, server: tcpBind, settings: settings())
    #expect(ignored.scriptName.isEmpty)
}

@Test func unixSocketServerNameFromHost() throws {
    let env = try CGIEnvironment.build(head: head("/", [("Host", "example.org:8443")]), peer: .unix, server: .unix(path: "/s"), settings: settings())
    #expect(env.serverName == "example.org" && env.serverPort == "8443" && env.remoteAddr == "")
    let noPort = try CGIEnvironment.build(head: head("/", [("Host", "example.org"), ("X-Forwarded-Proto", "https")]), peer: .unix,
                                          server: .unix(path: "/s"), settings: settings())
    #expect(noPort.serverPort == "443")
    let noHost = try CGIEnvironment.build(head: head("/", minor: 0), peer: .unix, server: .unix(path: "/s"), settings: settings())
    #expect(noHost.serverName == "" && noHost.serverPort == "" && noHost.serverProtocol == "HTTP/1.0")
}

@Test func expectContinueIsNoticed() throws {
    let env = try CGIEnvironment.build(head: head("/", method: "POST", [("Expect", "100-Continue")]), peer: loopback, server: tcpBind, settings: settings())
    #expect(env.expectsContinue)
}

@Test func bindParsing() throws {
    #expect(try WorkerBind(parsing: "127.0.0.1:8000") == .tcp(host: "127.0.0.1", port: 8000))
    #expect(try WorkerBind(parsing: ":9000") == .tcp(host: "0.0.0.0", port: 9000))
    #expect(try WorkerBind(parsing: "[::1]:8080") == .tcp(host: "::1", port: 8080))
    #expect(try WorkerBind(parsing: "localhost") == .tcp(host: "localhost", port: 8000))
    #expect(try WorkerBind(parsing: "unix:/run/app.sock") == .unix(path: "/run/app.sock"))
    #expect(throws: WorkerConfigurationError.self) { try WorkerBind(parsing: "host:99999") }
    #expect(throws: WorkerConfigurationError.self) { try WorkerBind(parsing: "unix:") }
}
