import Foundation
import HTTPFront
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NginxConfig
import Testing
@testable import ReverseProxy

/// A raw upstream for driving `ProxyRequest` without the front: answers each request with
/// its head as the body, or, for `/ws`, switches protocols and echoes bytes upper-cased.
final class RawUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var buffer = ByteBuffer()
    var tunneling = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if tunneling {
            let text = incoming.readString(length: incoming.readableBytes) ?? ""
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text.uppercased())), promise: nil)
            return
        }
        buffer.writeBuffer(&incoming)
        let text = String(buffer: buffer)
        guard let end = text.range(of: "\r\n\r\n") else { return }
        let head = String(text[..<end.lowerBound])
        buffer.clear()
        if head.hasPrefix("GET /ws ") {
            tunneling = true
            let reply = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nHELLO"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply)), promise: nil)
            return
        }
        let reply = "HTTP/1.1 200 OK\r\nContent-Length: \(head.utf8.count)\r\nX-Accel-Buffering: no\r\nConnection: close\r\n\r\n\(head)"
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}

/// What a fake client saw, handed back across threads.
struct Seen: Sendable {
    var status: Int?
    var headers: [String: String] = [:]
    var body = ""
    var error: Int?
    var variables: UpstreamVariableValues?
}

/// A client side for `ProxyRequest`, recording what the proxy sends; it also accepts a tunnel.
final class FakeClient: ProxyTunnelClient, ProxyVariableSink {
    var wantsUpstreamVariables: Bool { true }
    let head: HTTPRequestHead
    let variables: RequestVariables
    let eventLoop: any EventLoop
    var requestBodyLength: Int? { nil }
    var hasRequestBody: Bool { false }
    var isWritable: Bool { true }
    var acceptsFileRegions: Bool { true }
    var onWritabilityChanged: ((Bool) -> Void)?
    var onClientClose: (() -> Void)?
    var observer: (any ExchangeObserver)?
    var seen = Seen()
    let done: EventLoopPromise<Seen>
    var tunnelInput: ((ByteBuffer?) -> Void)?
    /// Sent into the tunnel once it is open; the tunnel is closed after `expect` bytes came back.
    var tunnelMessage = ""
    var expect = 0

    init(path: String, headers: [(String, String)], on loop: any EventLoop) {
        var httpHeaders = HTTPHeaders()
        for (name, value) in headers { httpHeaders.add(name: name, value: value) }
        head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: httpHeaders)
        variables = RequestVariables(method: "GET", requestURI: path, uri: path, args: "", version: .http1_1,
                                     headers: httpHeaders, remoteAddress: "10.1.2.3", host: "example.com")
        eventLoop = loop
        done = loop.makePromise()
    }

    func readBody(_ onPart: @escaping (RequestBodyPart) -> Void) { onPart(.end) }
    func pauseBody() {}
    func resumeBody() {}
    func sendHead(_ head: HTTPResponseHead) {
        seen.status = Int(head.status.code)
        for (name, value) in head.headers { seen.headers[name.lowercased()] = value }
    }
    func sendBody(_ data: IOData) -> EventLoopFuture<Void> {
        if case .byteBuffer(let buffer) = data { seen.body += String(buffer: buffer) }
        return eventLoop.makeSucceededVoidFuture()
    }
    func sendEnd() { done.succeed(seen) }
    func sendError(_ status: HTTPResponseStatus) { seen.error = Int(status.code); done.succeed(seen) }
    func abort() { done.succeed(seen) }
    func setUpstreamVariables(_ values: UpstreamVariableValues) { seen.variables = values }

    func switchToTunnel(_ head: HTTPResponseHead, onBytes: @escaping (ByteBuffer?) -> Void) {
        sendHead(head)
        tunnelInput = onBytes
        onBytes(ByteBuffer(string: tunnelMessage))
    }
    func sendTunnelBytes(_ bytes: ByteBuffer) -> EventLoopFuture<Void> {
        seen.body += String(buffer: bytes)
        if seen.body.utf8.count >= expect { tunnelInput?(nil) }
        return eventLoop.makeSucceededVoidFuture()
    }
    func closeTunnel() { done.succeed(seen) }
}

@Suite(.serialized) struct ProxyRequestTests {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func withUpstream<T>(_ body: (Int) async throws -> T) async throws -> T {
        let server = try await ServerBootstrap(group: Self.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RawUpstreamHandler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            let result = try await body(server.localAddress!.port!)
            try await server.close()
            return result
        } catch {
            try? await server.close()
            throw error
        }
    }

    func proxy(_ config: String, path: String, headers: [(String, String)] = [],
               tunnel: (message: String, expect: Int)? = nil) async throws -> Seen {
        let configuration = try loadConfiguration(config)
        let module = try ReverseProxyModule(configuration: configuration)
        let location = configuration.http!.servers[0].locations[0]
        let handler = try #require(try module.contentHandler(for: location.scope, in: configuration) as? ProxyContentHandler)
        let loop = Self.group.next()
        let future = try await loop.submit { () -> EventLoopFuture<Seen> in
            let client = FakeClient(path: path, headers: headers, on: loop)
            if let tunnel { client.tunnelMessage = tunnel.message; client.expect = tunnel.expect }
            handler.handle(client: client)
            return client.done.futureResult
        }.get()
        return try await future.get()
    }

    @Test func headersAndVariables() async throws {
        let seen = try await withUpstream { port in
            try await proxy("""
            events {}
            http { server { listen 8080; location / {
                proxy_pass http://127.0.0.1:\(port);
                proxy_set_header Host $host;
                proxy_set_header X-Real-IP $remote_addr;
            } } }
            """, path: "/a?b=1", headers: [("Host", "example.com"), ("Upgrade", "x"), ("X-Keep", "1")])
        }
        #expect(seen.status == 200)
        #expect(seen.body.hasPrefix("GET /a?b=1 HTTP/1.0\r\n"))
        #expect(seen.body.contains("Host: example.com\r\n"))
        #expect(seen.body.contains("X-Real-IP: 10.1.2.3\r\n"))
        #expect(seen.body.contains("Connection: close\r\n"))
        #expect(seen.body.hasSuffix("X-Keep: 1"))
        #expect(!seen.body.contains("Upgrade"))
        #expect(seen.headers["x-accel-buffering"] == nil)
        #expect(seen.headers["connection"] == nil)
        #expect(seen.variables?.upstreamStatus == "200")
        #expect(seen.variables?.upstreamAddr.hasPrefix("127.0.0.1:") == true)
        #expect(seen.variables?.responseHeaders["upstream_http_x_accel_buffering"] == "no")
        #expect(seen.variables?.responseHeaders["upstream_http_content_length"] != nil)
    }

    @Test func refusedConnectionIs502WithVariables() async throws {
        // Bind and close to find a port nothing listens on.
        let port = try await withUpstream { port in port }
        let seen = try await proxy("""
        events {}
        http { server { listen 8080; location / { proxy_pass http://127.0.0.1:\(port); } } }
        """, path: "/")
        #expect(seen.error == 502)
        #expect(seen.variables?.upstreamStatus == "502")
    }

    @Test func upgradeBecomesATunnel() async throws {
        let seen = try await withUpstream { port in
            try await proxy("""
            events {}
            http { server { listen 8080; location / {
                proxy_pass http://127.0.0.1:\(port);
                proxy_http_version 1.1;
                proxy_set_header Upgrade $http_upgrade;
                proxy_set_header Connection "upgrade";
            } } }
            """, path: "/ws", headers: [("Upgrade", "websocket"), ("Connection", "Upgrade")],
                            tunnel: ("ping", 9))
        }
        #expect(seen.status == 101)
        #expect(seen.headers["upgrade"] == "websocket")
        // "HELLO" sent by the server right after its 101 head, then the echo of "ping".
        #expect(seen.body == "HELLOPING")
        #expect(seen.variables?.upstreamStatus == "101")
    }

    @Test func upgradeWithoutConfigurationIs502() async throws {
        // nginx's default `Upgrade ""` never asks the upstream to switch; one that does anyway is invalid.
        let seen = try await withUpstream { port in
            try await proxy("""
            events {}
            http { server { listen 8080; location / { proxy_pass http://127.0.0.1:\(port); } } }
            """, path: "/ws", headers: [("Upgrade", "websocket")])
        }
        #expect(seen.error == 502)
    }

    @Test func variableValuesFormat() {
        let values = UpstreamVariableValues([
            UpstreamTry(address: "127.0.0.1:1", status: 502, responseTime: 0.0004),
            UpstreamTry(address: "unix:/s", status: 200, responseTime: 1.25),
        ])
        #expect(values.upstreamAddr == "127.0.0.1:1, unix:/s")
        #expect(values.upstreamStatus == "502, 200")
        #expect(values.upstreamResponseTime == "0.000, 1.250")
    }
}
