import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NginxConfig
import Testing
@testable import HTTPFront

/// A module claiming locations with their own `proxy_pass`, answering with the request body
/// (chunked, as an upstream without Content-Length), or with the front's 502 for `/fail`.
private struct EchoModule: ContentModule {
    func contentHandler(for location: ConfigScope, in configuration: Configuration) throws(ConfigError) -> (any ContentHandler)? {
        location.own("proxy_pass") == nil ? nil : EchoHandler()
    }
}

private struct EchoHandler: ContentHandler {
    func handle(_ exchange: HTTPExchange) {
        if exchange.head.uri.hasPrefix("/echo/fail") {
            exchange.sendError(.badGateway)
            return
        }
        if exchange.head.uri.hasPrefix("/echo/ws") {
            var head = HTTPResponseHead(version: .http1_1, status: .switchingProtocols)
            head.headers.add(name: "Upgrade", value: "echo")
            head.headers.add(name: "Connection", value: "upgrade")
            var seen = ""
            exchange.switchToTunnel(head) { bytes in
                guard let bytes else { return }
                seen += String(buffer: bytes)
                exchange.sendTunnelBytes(bytes)
                if seen.hasSuffix("bye") { exchange.closeTunnel() }
            }
            return
        }
        if exchange.head.uri.hasPrefix("/echo/late") {
            // Answers after the client has gone: every call must be a harmless no-op.
            exchange.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(200)) {
                exchange.sendHead(HTTPResponseHead(version: .http1_1, status: .ok))
                exchange.sendBody(.byteBuffer(ByteBuffer(string: "late")))
                exchange.sendEnd()
            }
            return
        }
        var collected = ByteBuffer()
        exchange.readBody { part in
            switch part {
            case .bytes(var bytes): collected.writeBuffer(&bytes)
            case .end:
                var head = HTTPResponseHead(version: .http1_1, status: .ok)
                head.headers.add(name: "X-Host", value: exchange.variables.host)
                head.headers.add(name: "X-URI", value: exchange.head.uri)
                exchange.sendHead(head)
                exchange.sendBody(.byteBuffer(collected))
                exchange.sendEnd()
            case .failed: exchange.abort()
            }
        }
    }
}

@Suite(.serialized) struct ContentModuleTests {
    private func withServer(_ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("front-module-\(getpid())-\(Int.random(in: 0..<1_000_000))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "oops\n".write(to: dir.appendingPathComponent("50x.html"), atomically: true, encoding: .utf8)
        let file = dir.appendingPathComponent("gantry.conf")
        try """
        events {}
        http {
            access_log off;
            server {
                listen unix:\(dir.path)/front.sock;
                root \(dir.path);
                location /echo/ { proxy_pass http://127.0.0.1:9; add_header X-Added yes; }
                location /echo/fail { proxy_pass http://127.0.0.1:9; error_page 502 /50x.html; }
                location /tf { try_files /nothing /echo/redirected?x=1; }
            }
        }
        """.write(to: file, atomically: true, encoding: .utf8)
        let configuration = try ConfigurationLoader(configFile: file.path).load()
        let server = try HTTPFrontServer(configuration: configuration, modules: [EchoModule()], logger: Logger(label: "test"))
        try server.start()
        defer { server.shutdownGracefully(timeout: .seconds(2)) }
        try body(dir.path + "/front.sock")
    }

    private func exchange(path: String, _ request: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(connected == 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var out = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func moduleAnswersWithChunkedBodyAndFrontHeaders() throws {
        try withServer { path in
            let response = try exchange(path: path, "POST /echo/x HTTP/1.1\r\nHost: Example.org\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
            #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(response.contains("\r\nServer: gantry/"))
            #expect(response.contains("\r\nX-Host: example.org\r\n"))
            #expect(response.contains("\r\nX-Added: yes\r\n"))
            #expect(response.contains("\r\nTransfer-Encoding: chunked\r\n"))
            #expect(response.hasSuffix("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
        }
    }

    @Test func internalRedirectShowsTheNewURI() throws {
        try withServer { path in
            let response = try exchange(path: path, "GET /tf HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(response.contains("\r\nX-URI: /echo/redirected?x=1\r\n"))
            let direct = try exchange(path: path, "GET /echo/a%20b?q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(direct.contains("\r\nX-URI: /echo/a%20b?q\r\n"))
        }
    }

    @Test func chunkedRequestBodyReachesTheModule() throws {
        try withServer { path in
            let response = try exchange(path: path, "POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            #expect(response.hasSuffix("\r\n\r\n5\r\nabcde\r\n0\r\n\r\n"))
        }
    }

    @Test func expectContinueIsAnswered() throws {
        try withServer { path in
            let response = try exchange(path: path, "POST /echo/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi")
            #expect(response.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"))
            #expect(response.hasSuffix("2\r\nhi\r\n0\r\n\r\n"))
        }
    }

    @Test func callsAfterTheClientLeftAreHarmless() throws {
        try withServer { path in
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
            }
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            _ = "GET /echo/late HTTP/1.1\r\nHost: x\r\n\r\n".withCString { send(fd, $0, strlen($0), 0) }
            close(fd)
            usleep(400_000)
            let response = try exchange(path: path, "POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            #expect(response.hasSuffix("2\r\nok\r\n0\r\n\r\n"))
        }
    }

    @Test func tunnelAfterSwitchingProtocols() throws {
        try withServer { path in
            let response = try exchange(path: path, "GET /echo/ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nabc-bye")
            #expect(response.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
            #expect(response.contains("\r\nUpgrade: echo\r\nConnection: upgrade\r\n\r\n"))
            #expect(response.hasSuffix("\r\n\r\nabc-bye"))
        }
    }

    @Test func sendErrorUsesErrorPage() throws {
        try withServer { path in
            let response = try exchange(path: path, "GET /echo/fail HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(response.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"))
            #expect(response.hasSuffix("oops\n"))
        }
    }

    @Test func keepAliveAcrossModuleResponses() throws {
        try withServer { path in
            let one = "POST /echo/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nA"
            let two = "POST /echo/b HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nB"
            let response = try exchange(path: path, one + two)
            #expect(response.components(separatedBy: "HTTP/1.1 200 OK").count == 3)
            #expect(response.hasSuffix("1\r\nB\r\n0\r\n\r\n"))
        }
    }
}
