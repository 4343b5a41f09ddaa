#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore

/// First on a TLS connection: when the client's first bytes are not a TLS handshake record
/// (0x16) but look like an HTTP request line, answers nginx's "400 The plain HTTP request was
/// sent to HTTPS port" page and closes, instead of a failed handshake the user cannot read.
/// Otherwise it passes the bytes on and leaves the pipeline.
final class PlainHTTPOnTLSPortHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let first = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self),
              first >= UInt8(ascii: "A"), first <= UInt8(ascii: "Z") else {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        let client = context.channel.remoteAddress?.ipAddress ?? "?"
        logger.info("client sent plain HTTP request to HTTPS port while reading client request headers, client: \(client)")
        let title = "400 The plain HTTP request was sent to HTTPS port"
        let body = "<html>\r\n<head><title>\(title)</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n"
            + "<center>The plain HTTP request was sent to HTTPS port</center>\r\n<hr><center>\(FrontServerInfo.name)</center>\r\n</body>\r\n</html>\r\n"
        let head = "HTTP/1.1 400 Bad Request\r\nServer: \(FrontServerInfo.name)\r\nDate: \(HTTPDate.rfc1123(Int(time(nil))))\r\n"
            + "Content-Type: text/html\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        let answer = context.channel.allocator.buffer(string: head + body)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(answer)).whenComplete { _ in loopBound.value.close(promise: nil) }
    }
}
