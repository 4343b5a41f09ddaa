import HTTPFront
import NIOCore
import NIOHTTP1

/// The client side of one proxied exchange, as the proxy needs it.
///
/// The front's `HTTPExchange` is the real one; keeping the proxy on this small
/// protocol lets tests drive it without the front's server.
public protocol ProxyClient: AnyObject {
    var head: HTTPRequestHead { get }
    var variables: RequestVariables { get }
    var eventLoop: any EventLoop { get }
    var requestBodyLength: Int? { get }
    var hasRequestBody: Bool { get }
    var isWritable: Bool { get }
    /// False when body pieces must be bytes (the front gzips the response on the fly).
    var acceptsFileRegions: Bool { get }
    var onWritabilityChanged: ((Bool) -> Void)? { get set }
    var onClientClose: (() -> Void)? { get set }
    /// Both events to one object (`ProxyRequest`): no closure per request.
    var observer: (any ExchangeObserver)? { get set }
    func readBody(_ onPart: @escaping (RequestBodyPart) -> Void)
    func pauseBody()
    func resumeBody()
    func sendHead(_ head: HTTPResponseHead)
    /// `sendHead` with the header lines already written (`Name: value\r\n` each), as the proxy
    /// passes an upstream's lines on without making strings of them.
    func sendHead(status: HTTPResponseStatus, headerLines: ByteBuffer, hasContentLength: Bool)
    /// The same, the lines written by `writeLines` into the client's own head buffer.
    func sendHead(status: HTTPResponseStatus, hasContentLength: Bool, writingLines writeLines: (inout ByteBuffer) -> Void)
    /// Sends a head the client may hold for the first body bytes (see `HTTPExchange.flushHead`).
    func flushHead()
    @discardableResult func sendBody(_ data: IOData) -> EventLoopFuture<Void>
    /// `sendBody` without a future (the proxy follows `isWritable` for backpressure).
    func writeBody(_ data: IOData)
    func sendEnd()
    func sendError(_ status: HTTPResponseStatus)
    func abort()
    /// Where `$upstream_*` go (nil: nowhere). A requirement rather than a cast: a dynamic cast per request costs.
    var variableSink: (any ProxyVariableSink)? { get }
}

extension ProxyClient {
    public var variableSink: (any ProxyVariableSink)? { self as? any ProxyVariableSink }
    public func writeBody(_ data: IOData) { sendBody(data) }
    public func flushHead() {}

    public func sendHead(status: HTTPResponseStatus, hasContentLength: Bool,
                         writingLines writeLines: (inout ByteBuffer) -> Void) {
        var lines = ByteBuffer()
        writeLines(&lines)
        sendHead(status: status, headerLines: lines, hasContentLength: hasContentLength)
    }

    /// For clients without a byte path: the lines become `HTTPHeaders` again.
    public func sendHead(status: HTTPResponseStatus, headerLines: ByteBuffer, hasContentLength: Bool) {
        var headers = HTTPHeaders()
        for line in String(buffer: headerLines).split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.add(name: String(line[..<colon]), value: String(line[line.index(after: colon)...].drop { $0 == " " }))
        }
        sendHead(HTTPResponseHead(version: head.version, status: status, headers: headers))
    }
}

extension HTTPExchange: ProxyClient, ProxyTunnelClient, ProxyVariableSink {
    public var wantsUpstreamVariables: Bool { logsModuleVariables }
    public var variableSink: (any ProxyVariableSink)? { self }

    /// `$upstream_addr` & co. for the front's access log.
    public func setUpstreamVariables(_ values: UpstreamVariableValues) {
        for (name, value) in values.byName { setVariable(name, value) }
    }
}
