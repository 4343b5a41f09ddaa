import NIOCore
import NIOHTTP1
import NginxConfig

/// The front's extension point: a module that takes over the content phase of
/// the locations whose directives ask for it, as nginx's `proxy_pass` does.
///
/// The front keeps routing (server, location, URI normalisation), the
/// `Date`/`Server` headers, `add_header`, response framing, keep-alive and
/// the access log; the module only produces the response.
///
/// A module is registered with `HTTPFrontServer(configuration:modules:)`.
/// While the configuration is compiled, every location (named ones too) is
/// offered to every module in order; the first one that returns a handler
/// claims it and the front's static content handler is not used there.
public protocol ContentModule: Sendable {
    /// Returns the handler for `location` when its directives ask for this module
    /// (e.g. the location has its own `proxy_pass`), nil otherwise. Throw a
    /// `ConfigError` (with the directive's file:line) for a bad directive: the
    /// stack then refuses to start, as nginx does.
    func contentHandler(for location: ConfigScope, in configuration: Configuration) throws(ConfigError) -> (any ContentHandler)?
}

/// Produces the response for one request of a claimed location.
public protocol ContentHandler: Sendable {
    /// Called on the client connection's event loop (`exchange.eventLoop`) once
    /// the request head is routed. The handler must end the exchange exactly
    /// once: `sendEnd()` after `sendHead`, or `sendError(_:)`.
    func handle(_ exchange: HTTPExchange)
}

/// What arrives of a request body, in order.
public enum RequestBodyPart {
    case bytes(ByteBuffer)
    /// The body is complete (trailers of a chunked body are dropped).
    case end
    /// The client went away or sent a malformed body; the exchange is over.
    case failed(any Error)
}

/// One request/response exchange handed to a `ContentHandler`.
///
/// Bound to the client connection's event loop: use it only there (hop with
/// `eventLoop.execute` from elsewhere). Create upstream connections on the same
/// loop (`ClientBootstrap(group: exchange.eventLoop)`) to avoid hops.
public final class HTTPExchange {
    /// The request head as received; `uri` is the raw request target.
    public let head: HTTPRequestHead
    /// nginx variables for this request (`$host`, `$remote_addr`, captures of the location regex, …).
    public internal(set) var variables: RequestVariables
    /// The claimed location's scope, for directives the module reads per request.
    public let location: ConfigScope
    public let channel: any Channel
    public var eventLoop: any EventLoop { channel.eventLoop }
    /// `Content-Length` of the request body, nil when chunked or absent.
    public let requestBodyLength: Int?
    /// Whether the request has a body at all (`Content-Length` > 0 or chunked).
    public let hasRequestBody: Bool

    /// Called when the peer's socket becomes writable again after `isWritable` was false:
    /// resume reading from the upstream then.
    public var onWritabilityChanged: ((Bool) -> Void)?
    /// Called once if the client connection closes before the exchange ended.
    public var onClientClose: (() -> Void)?
    /// The same two events for a module with an object per exchange (no closure to allocate per
    /// request). Held strongly, like the closures: the module sets it back to nil when it is done.
    public var observer: (any ExchangeObserver)?

    /// Strong: the connection drops its exchange when the response ends or the client goes away.
    let sink: any ExchangeSink

    init(head: HTTPRequestHead, variables: RequestVariables, location: ConfigScope, channel: any Channel,
         requestBodyLength: Int?, hasRequestBody: Bool, sink: any ExchangeSink) {
        self.head = head
        self.variables = variables
        self.location = location
        self.channel = channel
        self.requestBodyLength = requestBodyLength
        self.hasRequestBody = hasRequestBody
        self.sink = sink
    }

    // MARK: Request body (with backpressure)

    /// Starts delivering the request body to `onPart`. Bytes already received are
    /// delivered at once; `.end` arrives last (immediately when there is no body).
    public func readBody(_ onPart: @escaping (RequestBodyPart) -> Void) { sink.exchangeReadBody(self, onPart) }
    /// Stops reading the client socket until `resumeBody()` (TCP backpressure).
    public func pauseBody() { sink.exchangeSetBodyPaused(self, true) }
    public func resumeBody() { sink.exchangeSetBodyPaused(self, false) }

    // MARK: Response

    /// Whether the client socket accepts more without buffering in memory.
    public var isWritable: Bool { channel.isWritable }

    /// Whether body pieces may be `FileRegion`s (sendfile). False once `sendHead` chose to gzip
    /// the response on the fly: pieces must then be bytes.
    public var acceptsFileRegions: Bool { sink.exchangeAcceptsFileRegions(self) }

    /// Sends the status line and headers. The front adds `Server`, `Date`,
    /// `Connection`, `add_header` values and the framing (`Transfer-Encoding:
    /// chunked` when no `Content-Length` is given on HTTP/1.1).
    public func sendHead(_ head: HTTPResponseHead) { sink.exchangeSendHead(self, head) }
    /// `sendHead` with header lines already serialised (`Name: value\r\n` each), without the
    /// front's own lines (`Server`, `Date`, `Connection`, `Transfer-Encoding`, `Keep-Alive`).
    ///
    /// The head is held until the first body bytes (a small first part shares its write),
    /// `flushHead()` or `sendEnd()`.
    public func sendHead(status: HTTPResponseStatus, headerLines: ByteBuffer, hasContentLength: Bool) {
        sink.exchangeSendHeadLines(self, status: status, headerLines: headerLines, hasContentLength: hasContentLength)
    }
    /// `sendHead(status:headerLines:hasContentLength:)` with the lines written by `writeLines`
    /// straight into the response head's buffer (no buffer of their own, no copy).
    public func sendHead(status: HTTPResponseStatus, hasContentLength: Bool, writingLines writeLines: (inout ByteBuffer) -> Void) {
        sink.exchangeSendHeadWriting(self, status: status, hasContentLength: hasContentLength, writeLines)
    }
    /// Sends a head held by `sendHead(status:headerLines:hasContentLength:)` now.
    public func flushHead() { sink.exchangeFlushHead(self) }
    /// Sends part of the body; the future completes when it is written to the socket.
    @discardableResult
    public func sendBody(_ data: IOData) -> EventLoopFuture<Void> { sink.exchangeSendBody(self, data) }
    /// Sends part of the body without a future, for callers that follow `isWritable` instead (cheaper per write).
    public func writeBody(_ data: IOData) { sink.exchangeWriteBody(self, data) }
    /// Ends the response; the connection then serves the next request or closes.
    public func sendEnd() { sink.exchangeSendEnd(self) }
    /// Answers with the front's error response for `status` (honouring `error_page`)
    /// instead of a response of its own; only valid before `sendHead`.
    public func sendError(_ status: HTTPResponseStatus) { sink.exchangeSendError(self, status) }
    // MARK: Variables for the access log

    /// Whether this request's location writes an access log, the only reader of module
    /// variables: when false, a module can skip formatting them (a per-request cost).
    public internal(set) var logsModuleVariables = true

    /// Sets a module variable (`$upstream_addr`, `$upstream_status`, … — see
    /// `VariableName.moduleVariableNames`) for this request's access log line.
    public func setVariable(_ name: String, _ value: String) {
        variables.moduleValues[name] = value
        sink.exchangeSetVariable(self, name, value)
    }

    // MARK: Tunnel (WebSocket after 101)

    /// Sends `head` (a `101 Switching Protocols` with its `Upgrade`/`Connection` as given), stops
    /// HTTP parsing on the client connection and from then on hands every byte the client sends
    /// to `onBytes` (`nil` once the client closed). `pauseBody`/`resumeBody` pause those reads.
    public func switchToTunnel(_ head: HTTPResponseHead, onBytes: @escaping (ByteBuffer?) -> Void) {
        sink.exchangeSwitchToTunnel(self, head, onBytes: onBytes)
    }

    /// Writes tunnel bytes to the client; the future completes once written.
    @discardableResult
    public func sendTunnelBytes(_ bytes: ByteBuffer) -> EventLoopFuture<Void> { sink.exchangeSendTunnelBytes(self, bytes) }

    /// Closes the client connection (the tunnel is over).
    public func closeTunnel() { sink.exchangeAbort(self) }

    /// Aborts a response already started (the client sees a truncated response and the connection closes).
    /// Every call after the exchange ended (response complete, client gone) does nothing.
    public func abort() { sink.exchangeAbort(self) }
}

/// Receives an exchange's connection events (see `HTTPExchange.observer`).
public protocol ExchangeObserver: AnyObject {
    /// The client socket's writability changed (resume reading from the upstream when it is writable).
    func exchangeWritabilityChanged(_ writable: Bool)
    /// The client connection closed before the exchange ended.
    func exchangeClientClosed()
}

/// The connection side of an `HTTPExchange` (implemented by the front's connection handler).
protocol ExchangeSink: AnyObject {
    func exchangeReadBody(_ exchange: HTTPExchange, _ onPart: @escaping (RequestBodyPart) -> Void)
    func exchangeSetBodyPaused(_ exchange: HTTPExchange, _ paused: Bool)
    func exchangeSendHead(_ exchange: HTTPExchange, _ head: HTTPResponseHead)
    func exchangeSendHeadLines(_ exchange: HTTPExchange, status: HTTPResponseStatus, headerLines: ByteBuffer,
                               hasContentLength: Bool)
    func exchangeSendHeadWriting(_ exchange: HTTPExchange, status: HTTPResponseStatus, hasContentLength: Bool,
                                 _ writeLines: (inout ByteBuffer) -> Void)
    func exchangeFlushHead(_ exchange: HTTPExchange)
    func exchangeSendBody(_ exchange: HTTPExchange, _ data: IOData) -> EventLoopFuture<Void>
    func exchangeWriteBody(_ exchange: HTTPExchange, _ data: IOData)
    func exchangeAcceptsFileRegions(_ exchange: HTTPExchange) -> Bool
    func exchangeSendEnd(_ exchange: HTTPExchange)
    func exchangeSendError(_ exchange: HTTPExchange, _ status: HTTPResponseStatus)
    func exchangeAbort(_ exchange: HTTPExchange)
    func exchangeSetVariable(_ exchange: HTTPExchange, _ name: String, _ value: String)
    func exchangeSwitchToTunnel(_ exchange: HTTPExchange, _ head: HTTPResponseHead, onBytes: @escaping (ByteBuffer?) -> Void)
    func exchangeSendTunnelBytes(_ exchange: HTTPExchange, _ bytes: ByteBuffer) -> EventLoopFuture<Void>
}
