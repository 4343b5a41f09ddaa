#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Balancer
import HTTPFront
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A location's `ProxySettings` in a class, so each request holds a reference, not a copy.
final class SharedProxySettings: Sendable {
    let settings: ProxySettings
    /// `proxy_set_header` split once: names, values without variables (most of them: nginx's
    /// defaults), and templates only for the others; a request renders just those.
    let setHeaderNames: [String]
    private let setHeaderConstants: [String?]
    private let setHeaderTemplates: [ProxyTemplate?]
    /// The set headers' name lengths (`HeaderRules.lengthBits`): most client headers skip the list.
    let setHeaderNameLengths: UInt64

    init(_ settings: ProxySettings) {
        self.settings = settings
        setHeaderNames = settings.setHeaders.map(\.name)
        setHeaderConstants = settings.setHeaders.map(\.value.constantValue)
        setHeaderTemplates = settings.setHeaders.map { $0.value.constantValue == nil ? $0.value : nil }
        setHeaderNameLengths = HeaderRules.lengthBits(setHeaderNames)
    }

    /// The `proxy_set_header` list with this request's values, without those set to a constant ""
    /// (never sent; `setHeaderNames` still keeps the client's headers of those names back).
    func renderSetHeaders(_ variables: RequestVariables, proxy: ProxyVariables) -> [(name: String, value: String)] {
        var out: [(name: String, value: String)] = []
        out.reserveCapacity(setHeaderNames.count)
        for index in setHeaderNames.indices {
            if let constant = setHeaderConstants[index] {
                if !constant.isEmpty { out.append((name: setHeaderNames[index], value: constant)) }
            } else {
                out.append((name: setHeaderNames[index], value: setHeaderTemplates[index]?.render(variables, proxy: proxy) ?? ""))
            }
        }
        return out
    }
}

/// What became of one upstream try, for `$upstream_addr`, `$upstream_status`, `$upstream_response_time`.
public struct UpstreamTry: Sendable, Equatable {
    public var address: String
    public var status: Int?
    /// Seconds from the start of this try to the end of the response (or the failure).
    public var responseTime: Double
    /// Seconds to a connection (nil when it never connected).
    public var connectTime: Double?
    /// Seconds to the response head (nil when none came).
    public var headerTime: Double?
    /// Body bytes received from this server.
    public var responseLength = 0

    public init(address: String, status: Int? = nil, responseTime: Double = 0, connectTime: Double? = nil,
                headerTime: Double? = nil, responseLength: Int = 0) {
        self.address = address
        self.status = status
        self.responseTime = responseTime
        self.connectTime = connectTime
        self.headerTime = headerTime
        self.responseLength = responseLength
    }
}

/// One request on its way through the proxy: pick a peer, connect (or reuse), stream the
/// request up and the response down with backpressure both ways, retry per
/// `proxy_next_upstream` while nothing has reached the client.
///
/// Lives on the client connection's event loop; every upstream connection it uses is on that loop too.
final class ProxyRequest: UpstreamResponseDelegate, ExchangeObserver {
    enum BodyState {
        case none, notStarted, streaming, done
        /// `proxy_request_buffering on`: read whole (in memory up to `client_body_buffer_size`,
        /// then in a temp file) before connecting, so the request can be sent again to another server.
        case buffering, buffered
    }

    let client: any ProxyClient
    /// The location's settings, shared by reference: a request copies no settings struct.
    let location: SharedProxySettings
    let group: UpstreamGroup
    let upstreamURI: String
    let proxyVariables: ProxyVariables
    let logger: Logger
    let loop: any EventLoop
    var attempt: UpstreamGroup.Attempt
    var holdingPeer = false
    var connection: UpstreamConnection?
    var connectionReused = false
    /// Whether the current try's request head went to the server (nginx's `request_sent`).
    var requestSent = false
    /// A `101 Switching Protocols` head, until its end arrives and the tunnel starts.
    var switchingHead: UpstreamResponseHead?
    var tunneling = false
    var bodyState: BodyState
    var bodyBytes: Int64 = 0
    var bodySent = false
    /// The request body of `proxy_request_buffering on`, read whole before the first try.
    var requestSpool: BodySpool?
    /// Response bytes the client has not taken yet (`proxy_buffering on`); made when first needed.
    var responseSpool: BodySpool?
    /// `proxy_buffering`, or the upstream's `X-Accel-Buffering` for this response.
    var responseBuffering = false
    /// The upstream finished while the client still had spooled bytes to take.
    var upstreamEnded = false
    /// A stored body is still being written to the upstream connection (an early answer must
    /// not put the connection back in the pool with part of a body still to go out).
    var bodyWritesPending = false
    var responseHeadSent = false
    var upstreamKeepAlive = false
    var finished = false
    var sendTimer: Scheduled<Void>?
    var queueTimer: Scheduled<Void>?
    var queueTicket: Int?
    let startedAt = NIODeadline.now()
    var tryStartedAt = NIODeadline.now()
    var tries: [UpstreamTry] = []
    /// `proxy_set_header` values rendered for this request (kept to write the head again with a counted body).
    let setHeaders: [(name: String, value: String)]
    /// The upstream request head, serialised once (a retry writes it again).
    var requestHead: ByteBuffer
    var requestVersion: HTTPVersion
    var closesUpstream: Bool
    /// The request head sent upstream has an `Upgrade` header.
    var upgradeRequested: Bool
    /// The request body goes upstream with chunked framing (written here, there is no encoder).
    var chunksRequestBody: Bool
    /// The client as a variable sink (cast once: a dynamic cast per use costs).
    lazy var variableSink: (any ProxyVariableSink)? = client.variableSink
    /// `$upstream_http_*` of the response passed on, kept only when an access log can read them.
    var responseHeaderVariables: [String: String] = [:]
    /// Called once when the exchange is over, with the upstream tries (for logs and tests).
    var onFinish: (([UpstreamTry]) -> Void)?

    /// `variables` are the client's (passed in: reading them through the protocol copies them).
    init(client: any ProxyClient, variables: RequestVariables, location: SharedProxySettings, group: UpstreamGroup,
         upstreamURI: String, proxyVariables: ProxyVariables, logger: Logger) {
        self.client = client
        self.location = location
        self.group = group
        self.upstreamURI = upstreamURI
        self.proxyVariables = proxyVariables
        self.logger = logger
        self.loop = client.eventLoop
        var hashKey = ""
        if let template = group.hashKey { hashKey = template.render(variables) }
        let clientAddress = group.usesClientAddress ? ClientAddressKey.ipHashBytes(text: variables.remoteAddress) : []
        attempt = group.beginAttempt(clientAddress: clientAddress, hashKey: hashKey, maxTries: location.settings.nextUpstreamTries)
        let sendsBody = client.hasRequestBody && location.settings.passRequestBody
        bodyState = client.hasRequestBody ? .notStarted : .none
        let framing: HeaderRules.BodyFraming
        if !sendsBody {
            framing = .none
        } else if let length = client.requestBodyLength {
            framing = .length(length)
        } else {
            framing = .chunked
        }
        // Labelled like the parameter it goes to: an unlabelled tuple array would be cast element by element.
        setHeaders = location.renderSetHeaders(variables, proxy: proxyVariables)
        (requestHead, requestVersion, closesUpstream, upgradeRequested, chunksRequestBody) =
            Self.upstreamHead(setHeaders: setHeaders, client: client, location: location, uri: upstreamURI,
                              framing: framing)
    }

    static func upstreamHead(setHeaders: [(name: String, value: String)], client: any ProxyClient, location: SharedProxySettings,
                             uri: String, framing: HeaderRules.BodyFraming)
        -> (head: ByteBuffer, version: HTTPVersion, closes: Bool, upgrade: Bool, chunked: Bool) {
        // A streamed chunked body needs HTTP/1.1 framing even when proxy_http_version is 1.0
        // (a stored one is counted first and sent with Content-Length, as nginx does).
        let version = framing == .chunked ? .http1_1 : location.settings.httpVersion
        var head = ByteBufferAllocator().buffer(capacity: 512)
        let info = HeaderRules.writeUpstreamRequestHead(into: &head, method: client.head.method.rawValue, uri: uri,
                                                        version: version, setHeaders: setHeaders,
                                                        client: client.head.headers,
                                                        passClientHeaders: location.settings.passRequestHeaders, framing: framing,
                                                        setNameLengths: location.setHeaderNameLengths,
                                                        setNames: location.setHeaderNames)
        return (head, version, info.closesConnection, info.upgrade, framing == .chunked)
    }

    // MARK: Start and peer selection

    func start() {
        if location.settings.clientMaxBodySize > 0, let length = client.requestBodyLength, Int64(length) > location.settings.clientMaxBodySize {
            logger.error("client intended to send too large body: \(length) bytes")
            finish(status: .payloadTooLarge)
            return
        }
        // The client holds this request (as the closures did) until `markFinished`.
        client.observer = self
        if client.hasRequestBody, !location.settings.passRequestBody {
            // Not sent upstream, but still read so the client connection stays in step.
            bodyState = .done
            client.readBody { _ in }
        }
        if bodyState == .notStarted, location.settings.requestBuffering {
            bodyState = .buffering
            let spool = BodySpool(mode: .replayable, memoryLimit: location.settings.clientBodyBufferSize, fileLimit: .max,
                                  writeLimit: location.settings.tempFileWriteSize, directory: location.settings.clientBodyTempPath,
                                  loop: loop, logger: logger)
            spool.onProgress = { [self] in requestSpoolProgressed() }
            requestSpool = spool
            client.readBody { [self] part in bufferBodyPart(part) }
            return
        }
        nextPeer(first: true)
    }

    /// `proxy_request_buffering on`: the body goes to the spool; the client is paused while the
    /// temp file lags behind, and the first try starts once every byte is stored.
    func bufferBodyPart(_ part: RequestBodyPart) {
        guard !finished, let spool = requestSpool else { return }
        switch part {
        case .bytes(let buffer):
            bodyBytes += Int64(buffer.readableBytes)
            if location.settings.clientMaxBodySize > 0, bodyBytes > location.settings.clientMaxBodySize {
                logger.error("client intended to send too large chunked body: \(bodyBytes) bytes")
                finish(status: .payloadTooLarge)
                return
            }
            spool.append(buffer)
            if !spool.acceptsMore { client.pauseBody() }
        case .end:
            bodyState = .buffered
            requestSpoolProgressed()
        case .failed:
            clientClosed()
        }
    }

    func requestSpoolProgressed() {
        guard !finished, let spool = requestSpool else { return }
        if spool.fileFailed {
            // nginx answers 500 when it cannot store a request body.
            finish(status: .internalServerError)
            return
        }
        if bodyState == .buffering {
            if spool.acceptsMore { client.resumeBody() }
            return
        }
        guard bodyState == .buffered, spool.writesDone, connection == nil, !holdingPeer, tries.isEmpty else { return }
        if client.requestBodyLength == nil {
            // Counted now: sent with Content-Length, as nginx sends a buffered chunked body.
            (requestHead, requestVersion, closesUpstream, upgradeRequested, chunksRequestBody) = Self.upstreamHead(
                setHeaders: setHeaders, client: client, location: location, uri: upstreamURI,
                framing: .length(Int(spool.totalBytes)))
        }
        nextPeer(first: true)
    }

    func nextPeer(first: Bool) {
        guard !finished else { return }
        if !first, group.isSuperseded(attempt) {
            // The servers were replaced (an app pool's workers restarted or reloaded): retry among the current ones.
            moveToCurrentServers()
        }
        if group.hasNoServers(attempt), waitForServers() { return }
        if let address = group.pick(&attempt) {
            holdingPeer = true
            connect(to: address)
            return
        }
        if first, group.shouldQueue(), wait() { return }
        // An app pool whose every worker just failed: the supervisor is replacing them, so wait
        // (up to proxy_connect_timeout) for the next set instead of answering 502 at once.
        if !first, group.followsMembership, waitForServers() { return }
        logger.error("no live upstreams while connecting to upstream \"\(group.name)\"")
        finish(status: .badGateway)
    }

    /// `queue N timeout=T`: waits for a peer below `max_conns`; false when the queue is full.
    func wait() -> Bool {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let loop = self.loop
        guard let ticket = group.enqueue(wake: { loop.execute { bound.value.dequeued() } }) else {
            logger.error("upstream queue is full while connecting to upstream \"\(group.name)\"")
            return false
        }
        queueTicket = ticket
        queueTimer = loop.assumeIsolated().scheduleTask(in: .milliseconds(group.queueTimeout)) { [self] in
            guard let ticket = queueTicket, group.cancelWaiter(ticket) else { return }
            queueTicket = nil
            logger.error("upstream queue timed out while connecting to upstream \"\(group.name)\"")
            finish(status: .badGateway)
        }
        return true
    }

    /// A group with no servers yet (an app pool between a worker's death and its replacement):
    /// wait up to `proxy_connect_timeout` for servers, as a shared listen backlog would.
    func waitForServers() -> Bool {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let loop = self.loop
        let generation = attempt.generation
        let registered = group.whenServersReplaced(after: generation) {
            loop.execute {
                let request = bound.value
                guard !request.finished, request.attempt.generation == generation else { return }
                request.queueTimer?.cancel()
                request.queueTimer = nil
                request.moveToCurrentServers()
                request.nextPeer(first: true)
            }
        }
        guard registered else {
            moveToCurrentServers()
            return group.hasNoServers(attempt) ? waitForServers() : false
        }
        queueTimer = loop.assumeIsolated().scheduleTask(in: .milliseconds(location.settings.connectTimeout)) { [self] in
            guard !finished, attempt.generation == generation else { return }
            logger.error("no live upstreams while connecting to upstream \"\(group.name)\" (no server became available)")
            finish(status: .badGateway)
        }
        return true
    }

    /// Balances over the group's current servers from now on, with a fresh set of tries.
    func moveToCurrentServers() {
        group.endAttempt(attempt)
        let variables = client.variables
        let clientAddress = group.usesClientAddress ? ClientAddressKey.ipHashBytes(text: variables.remoteAddress) : []
        attempt = group.beginAttempt(clientAddress: clientAddress, hashKey: group.hashKey.map { $0.render(variables) } ?? "",
                                     maxTries: location.settings.nextUpstreamTries)
    }

    func dequeued() {
        queueTicket = nil
        queueTimer?.cancel()
        queueTimer = nil
        guard !finished else { return }
        if let address = group.pick(&attempt) {
            holdingPeer = true
            connect(to: address)
        } else if !wait() {
            finish(status: .badGateway)
        }
    }

    // MARK: Connecting

    func connect(to address: UpstreamAddress) {
        tryStartedAt = .now()
        requestSent = false
        tries.append(UpstreamTry(address: attempt.currentAddress == address ? attempt.currentName : address.description,
                                 status: nil, responseTime: 0))
        if let pooled = group.pool.take(address, on: loop) {
            connectionReused = true
            attach(pooled)
            return
        }
        openConnection(to: address)
    }

    func openConnection(to address: UpstreamAddress) {
        connectionReused = false
        let connectTimeout = location.settings.connectTimeout
        let future: EventLoopFuture<any Channel>
        var ownSocket: CInt?
        switch address {
        case .unix(let path):
            if let socket = UnixSocketConnect.connectNow(path: path) {
                ownSocket = socket
                // Connected already (a listening Unix socket accepts at once): the channel starts
                // from the connected socket, skipping the bootstrap's connect state and timer.
                future = group.pool.bootstrap(on: loop, connected: true, connectTimeout: connectTimeout)
                    .withConnectedSocket(socket)
            } else {
                // Refused, missing, or a full backlog: the bootstrap connects (with the timeout) and reports it.
                future = group.pool.bootstrap(on: loop, connected: false, connectTimeout: connectTimeout)
                    .connect(unixDomainSocketPath: path)
            }
        case .tcp(let host, let port):
            let bootstrap = group.pool.bootstrap(on: loop, connected: false, connectTimeout: connectTimeout)
            if let address = try? SocketAddress(ipAddress: host, port: port) {
                future = bootstrap.connect(to: address)
            } else {
                future = bootstrap.connect(host: host, port: port)
            }
        }
        future.hop(to: loop).assumeIsolated().whenComplete { [self, ownSocket] result in
            switch result {
            case .success(let channel):
                guard !finished else { channel.close(promise: nil); return }
                do {
                    let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                    attach(UpstreamConnection(channel: channel, handler: handler, address: address, descriptor: ownSocket))
                } catch {
                    channel.close(promise: nil)
                    upstreamFailed(.error, message: "\(error)")
                }
            case .failure(let error):
                guard !finished else { return }
                let timedOut: Bool
                if case ChannelError.connectTimeout = error { timedOut = true } else { timedOut = false }
                upstreamFailed(timedOut ? .timeout : .error,
                               message: timedOut ? "upstream timed out (110: Connection timed out) while connecting to upstream"
                                                 : "connect() failed (\(Self.describe(error))) while connecting to upstream")
            }
        }
    }

    /// Sends the request on a connected (or reused) connection.
    func attach(_ connection: UpstreamConnection) {
        self.connection = connection
        if let index = tries.indices.last { tries[index].connectTime = elapsed(since: tryStartedAt) }
        connection.handler.delegate = self
        connection.requestsServed += 1
        requestSent = true
        connection.handler.expectResponse(toHEAD: client.head.method == .HEAD, maxHeadSize: location.settings.upstreamHeaderBufferSize)
        let channel = connection.channel
        switch bodyState {
        case .none, .done:
            connection.sendHead(requestHead)
            armReadTimer()
        case .buffered:
            connection.nioMayHoldWrites = true
            guard let parts = requestSpool?.replayParts() else {
                upstreamFailed(.error, message: "cannot read the buffered request body back")
                return
            }
            channel.write(requestHead, promise: nil)
            // A stored body always goes with Content-Length (see `requestSpoolProgressed`): written as is.
            for part in parts {
                if let handle = part.handle {
                    let sent = loop.makePromise(of: Void.self)
                    sent.futureResult.whenComplete { _ in try? handle.close() }
                    channel.write(part.data, promise: sent)
                } else {
                    channel.write(part.data, promise: nil)
                }
            }
            bodyWritesPending = true
            let written = loop.makePromise(of: Void.self)
            written.futureResult.assumeIsolated().whenComplete { [self] _ in bodyWritesPending = false }
            channel.writeAndFlush(ByteBuffer(), promise: written)
            armReadTimer()
        case .notStarted:
            connection.sendHead(requestHead)
            connection.nioMayHoldWrites = true
            bodyState = .streaming
            bodySent = true
            client.readBody { [self] part in requestBodyPart(part) }
        case .streaming, .buffering:
            // Cannot happen: a request whose body started streaming is never retried.
            upstreamFailed(.error, message: "request body already sent")
            return
        }
        // A pooled connection still has the read `ConnectionPool.put` asked for (any byte or
        // close while idle would have ended it): asking again would only walk the pipeline.
        if !connectionReused { channel.read() }
    }

    // MARK: Request body (client → upstream)

    func requestBodyPart(_ part: RequestBodyPart) {
        guard !finished, let channel = connection?.channel else { return }
        switch part {
        case .bytes(let buffer):
            bodyBytes += Int64(buffer.readableBytes)
            if location.settings.clientMaxBodySize > 0, bodyBytes > location.settings.clientMaxBodySize {
                logger.error("client intended to send too large chunked body: \(bodyBytes) bytes")
                dropConnection()
                releasePeer(failed: false)
                finish(status: .payloadTooLarge)
                return
            }
            writeBodyBytes(buffer, on: channel)
            channel.flush()
            if !channel.isWritable {
                client.pauseBody()
                armSendTimer()
            }
        case .end:
            bodyState = .done
            writeBodyEnd(on: channel)
            armReadTimer()
        case .failed:
            clientClosed()
        }
    }

    /// Request body bytes as they go on the wire: a chunk when the body is chunked upstream.
    func writeBodyBytes(_ buffer: ByteBuffer, on channel: any Channel) {
        guard buffer.readableBytes > 0 else { return }
        if chunksRequestBody {
            var size = channel.allocator.buffer(capacity: 18)
            size.writeString(String(buffer.readableBytes, radix: 16))
            size.writeStaticString("\r\n")
            channel.write(size, promise: nil)
            channel.write(buffer, promise: nil)
            channel.write(ByteBuffer(staticString: "\r\n"), promise: nil)
        } else {
            channel.write(buffer, promise: nil)
        }
    }

    /// The end of the request body (the last chunk when chunked), flushed.
    func writeBodyEnd(on channel: any Channel) {
        if chunksRequestBody {
            channel.writeAndFlush(ByteBuffer(staticString: "0\r\n\r\n"), promise: nil)
        } else {
            channel.flush()
        }
    }

    func upstreamWritabilityChanged(_ writable: Bool) {
        guard !finished else { return }
        if writable {
            sendTimer?.cancel()
            sendTimer = nil
            if bodyState == .streaming || tunneling { client.resumeBody() }
        }
    }

    // MARK: Response (upstream → client)

    func upstreamDidReceiveHead(_ head: UpstreamResponseHead) {
        guard !finished else { return }
        armReadTimer()
        let status = Int(head.status.code)
        if status == 101 {
            switchingHead = head
            return
        }
        if status < 200 { return }  // 100 Continue and friends: nginx skips them.
        tries[tries.count - 1].status = status
        tries[tries.count - 1].responseTime = elapsed(since: tryStartedAt)
        tries[tries.count - 1].headerTime = tries[tries.count - 1].responseTime
        if let condition = NextUpstreamPolicy.condition(forStatus: status), canRetry(condition) {
            logger.info("upstream \"\(group.name)\" answered \(status), trying the next server")
            dropConnection()
            releasePeer(failed: NextUpstreamPolicy.countsAsFailure(condition))
            nextPeer(first: false)
            return
        }
        upstreamKeepAlive = (connection?.handler.responseAllowsKeepAlive ?? false) && !closesUpstream
        if let sink = variableSink, sink.wantsUpstreamVariables {
            responseHeaderVariables = UpstreamVariableValues.responseHeaderVariables(head)
        }
        if status >= 300, location.settings.interceptErrors, client.hasErrorPage(for: head.status) {
            // nginx (before X-Accel-Redirect): the upstream's answer is dropped; the front's error_page answers.
            handBackToFront { client.sendError(head.status) }
            return
        }
        if !location.settings.ignoresAccelRedirect, let target = head.firstValue(named: "x-accel-redirect"), !target.isEmpty {
            redirectInternally(to: target, head)
            return
        }
        switch location.settings.ignoresAccelBuffering ? nil : head.firstValue(named: "x-accel-buffering")?.lowercased() {
        case "yes": responseBuffering = true
        case "no": responseBuffering = false
        default: responseBuffering = location.settings.buffering
        }
        // Header lines go to the client as bytes, filtered in place into its head: no strings, no HTTPHeaders.
        responseHeadSent = true
        let location = self.location
        client.sendHead(status: head.status, hasContentLength: head.hasContentLength) { lines in
            HeaderRules.writeClientResponseHeaderLines(head, hidden: location.settings.hiddenResponseHeaderList,
                                                       redirects: location.settings.redirects, into: &lines)
        }
    }

    func upstreamDidReceiveBody(_ buffer: ByteBuffer) {
        guard !finished, responseHeadSent else { return }
        armReadTimer()
        tries[tries.count - 1].responseLength += buffer.readableBytes
        if let responseSpool {
            responseSpool.append(buffer)
            sendSpooled()
        } else if responseBuffering, !client.isWritable {
            // The client lags: keep reading the upstream into memory, then a temp file.
            // A response gzipped on the fly takes bytes only: memory, then backpressure.
            let fileLimit = client.acceptsFileRegions ? location.settings.maxTempFileSize : 0
            let spool = BodySpool(mode: .consumable, memoryLimit: location.settings.responseMemoryLimit,
                                  fileLimit: fileLimit, writeLimit: location.settings.tempFileWriteSize,
                                  directory: location.settings.tempPath, loop: loop, logger: logger)
            spool.onProgress = { [self] in
                sendSpooled()
                readMore()
            }
            spool.append(buffer)
            responseSpool = spool
        } else {
            client.writeBody(.byteBuffer(buffer))
        }
    }

    /// Hands spooled response bytes to the client while it takes them; once the upstream has
    /// ended and nothing is left, ends the response.
    func sendSpooled() {
        guard let spool = responseSpool else { return }
        while client.isWritable, let next = spool.takeNext() {
            if let handle = next.handle {
                client.sendBody(next.data).whenComplete { _ in try? handle.close() }
            } else {
                client.writeBody(next.data)
            }
        }
        if upstreamEnded, spool.isEmpty { endSpooledResponse() }
    }

    func upstreamDidReceiveEnd() {
        if let head = switchingHead, !finished {
            switchingHead = nil
            startTunnel(head)
            return
        }
        guard !finished, responseHeadSent else { return }
        if let index = tries.indices.last { tries[index].responseTime = elapsed(since: tryStartedAt) }
        cancelTimers()
        markFinished()
        let connection = self.connection
        self.connection = nil
        releasePeer(failed: false)
        if let connection {
            connection.handler.delegate = nil
            if upstreamKeepAlive, !bodyWritesPending, bodyState == .none || bodyState == .done || bodyState == .buffered {
                group.pool.put(connection, on: loop)
            } else {
                connection.channel.close(promise: nil)
            }
        }
        if let spool = responseSpool, !spool.isEmpty {
            // The upstream connection is free; the client still takes what was spooled.
            upstreamEnded = true
            client.observer = self
            spool.onProgress = { [self] in sendSpooled() }
            return
        }
        responseSpool?.close()
        client.sendEnd()
        onFinish?(tries)
    }

    /// The last spooled bytes went to the client (or it left): end the exchange.
    func endSpooledResponse(clientGone: Bool = false) {
        guard upstreamEnded, let spool = responseSpool else { return }
        responseSpool = nil
        spool.close()
        client.observer = nil
        if !clientGone { client.sendEnd() }
        onFinish?(tries)
    }

    func upstreamReadComplete() {
        // The head may wait for body bytes of the same read, not longer (a stream's first event may be far off).
        if responseHeadSent, !finished, !tunneling { client.flushHead() }
        readMore()
    }

    // MARK: Client events

    func exchangeWritabilityChanged(_ writable: Bool) {
        // A tunnel follows the client's writability through its own callback.
        guard writable, !tunneling else { return }
        sendSpooled()
        readMore()
    }

    func exchangeClientClosed() {
        // Once the upstream ended, only spooled bytes were left for the client.
        if upstreamEnded {
            endSpooledResponse(clientGone: true)
        } else {
            clientClosed()
        }
    }

    // MARK: Upgrade (WebSocket) tunnel

    /// The upstream switched protocols: when the request asked for it and the client side can
    /// become a byte tunnel, relay bytes both ways until either side closes (nginx's upgraded
    /// connection, idle for at most `proxy_read_timeout`). Otherwise it is an invalid answer (502).
    func startTunnel(_ head: UpstreamResponseHead) {
        guard let connection, let tunnelClient = client as? any ProxyTunnelClient,
              upgradeRequested, !client.head.headers["upgrade"].isEmpty else {
            dropConnection()
            upstreamFailed(.invalidHeader, message: "upstream sent 101 Switching Protocols to a request that did not ask to upgrade")
            return
        }
        tries[tries.count - 1].status = 101
        tries[tries.count - 1].responseTime = elapsed(since: tryStartedAt)
        let channel = connection.channel
        tunneling = true
        responseHeadSent = true
        let headers = HeaderRules.clientResponseHeaders(upstream: head.headers, status: 101,
                                                        hidden: location.settings.hiddenResponseHeaderList, redirects: [])
        tunnelClient.onWritabilityChanged = { writable in if writable { channel.read() } }
        tunnelClient.switchToTunnel(HTTPResponseHead(version: client.head.version, status: .switchingProtocols,
                                                     headers: headers)) { [self] bytes in
            guard let bytes else {
                endTunnel()
                return
            }
            armReadTimer()
            channel.writeAndFlush(bytes, promise: nil)
            if !channel.isWritable { client.pauseBody() }
        }
        guard !finished else { return }
        // The handler stops parsing HTTP: bytes it read past the 101 and every later read go to the client.
        connection.handler.startTunnel(
            onBytes: { [self] bytes in
                armReadTimer()
                tunnelClient.sendTunnelBytes(bytes)
            },
            onReadComplete: {
                if tunnelClient.isWritable { channel.read() }
            })
        armReadTimer()
        channel.read()
    }

    /// Either side closed or went idle: close both.
    func endTunnel() {
        guard tunneling, !finished else { return }
        cancelTimers()
        markFinished()
        dropConnection()
        releasePeer(failed: false)
        (client as? any ProxyTunnelClient)?.closeTunnel()
        onFinish?(tries)
    }

    /// Asks the upstream for more while the client keeps up, or while the spool has room
    /// (`proxy_buffering on`); before the head, always.
    func readMore() {
        guard !finished, let channel = connection?.channel else { return }
        if !responseHeadSent {
            channel.read()
        } else if let responseSpool {
            if responseSpool.acceptsMore { channel.read() }
        } else if client.isWritable || responseBuffering {
            channel.read()
        }
    }

    func upstreamDidFail(_ error: any Error) {
        if tunneling { endTunnel(); return }
        guard !finished, connection != nil else { return }
        let condition: NextUpstreamPolicy.Condition = error is UpstreamResponseError ? .invalidHeader : .error
        let message = "\(error) while reading response \(responseHeadSent ? "" : "header ")from upstream"
        dropConnection()
        upstreamFailed(condition, message: message)
    }

    func upstreamDidClose() {
        if tunneling { endTunnel(); return }
        guard !finished, connection != nil else { return }
        connection = nil
        upstreamFailed(.error, message: "upstream prematurely closed connection while reading response header from upstream")
    }

    // MARK: Failures, retries, timeouts

    func canRetry(_ condition: NextUpstreamPolicy.Condition) -> Bool {
        // Never once the client got bytes, nor once body bytes went upstream (they cannot be replayed).
        guard !responseHeadSent, !bodySent else { return false }
        guard location.settings.nextUpstream.allowsRetry(condition, method: client.head.method.rawValue,
                                                requestSent: requestSent) else { return false }
        if location.settings.nextUpstreamTimeout > 0, elapsed(since: startedAt) * 1000 >= Double(location.settings.nextUpstreamTimeout) { return false }
        return attempt.triesLeft > 1 || group.isSuperseded(attempt)
    }

    /// A try failed before the response reached the client: next server, or 502/504.
    func upstreamFailed(_ condition: NextUpstreamPolicy.Condition, message: String) {
        guard !finished else { return }
        cancelTimers()
        if responseHeadSent {
            logger.error("\(message)")
            dropConnection()
            releasePeer(failed: false)
            markFinished()
            responseSpool?.close()
            responseSpool = nil
            client.abort()
            onFinish?(tries)
            return
        }
        // A pooled connection the server closed meanwhile: open a fresh one to the same peer, as nginx does.
        if connectionReused, !bodySent, let address = attempt.currentAddress {
            dropConnection()
            openConnection(to: address)
            return
        }
        logger.error("\(message), upstream: \"\(tries.last?.address ?? group.name)\"")
        if let index = tries.indices.last, tries[index].status == nil {
            tries[index].status = condition == .timeout ? 504 : 502
            tries[index].responseTime = elapsed(since: tryStartedAt)
        }
        let retry = canRetry(condition)
        // An app pool's worker that just died is still listed until the supervisor reaps it:
        // a request that may be retried waits for the pool's next set of workers instead of 502.
        let awaitReplacement = !retry && condition == .error && group.followsMembership
            && !responseHeadSent && !bodySent
            && location.settings.nextUpstream.allowsRetry(condition, method: client.head.method.rawValue, requestSent: requestSent)
        dropConnection()
        releasePeer(failed: true)
        if retry {
            nextPeer(first: false)
        } else if awaitReplacement, waitForServers() {
            return
        } else if awaitReplacement, !finished {
            nextPeer(first: true)  // replaced meanwhile: waitForServers moved to the current servers
        } else {
            finish(status: condition == .timeout ? .gatewayTimeout : .badGateway)
        }
    }

    /// `proxy_read_timeout` counts from the last read: the connection's one timer (see
    /// `UpstreamHandler.armReadTimeout`) is moved, not rescheduled, per read and per request.
    func armReadTimer() {
        connection?.handler.armReadTimeout(.now() + .milliseconds(location.settings.readTimeout), on: loop)
    }

    func upstreamReadTimedOut() {
        guard !finished else { return }
        if tunneling { endTunnel(); return }
        upstreamFailed(.timeout, message: "upstream timed out (110: Connection timed out) while reading response header from upstream")
    }

    func armSendTimer() {
        guard sendTimer == nil else { return }
        sendTimer = loop.assumeIsolated().scheduleTask(in: .milliseconds(location.settings.sendTimeout)) { [self] in
            sendTimer = nil
            upstreamFailed(.timeout, message: "upstream timed out (110: Connection timed out) while sending request to upstream")
        }
    }

    func cancelTimers() {
        connection?.handler.disarmReadTimeout()
        sendTimer?.cancel()
        sendTimer = nil
    }

    // MARK: Endings

    func dropConnection() {
        guard let connection else { return }
        self.connection = nil
        connection.handler.delegate = nil
        connection.channel.close(promise: nil)
    }

    func releasePeer(failed: Bool) {
        guard holdingPeer else { return }
        holdingPeer = false
        group.release(&attempt, failed: failed)
    }

    func clientClosed() {
        guard !finished else { return }
        markFinished()
        responseSpool?.close()
        responseSpool = nil
        cancelTimers()
        queueTimer?.cancel()
        if let ticket = queueTicket { _ = group.cancelWaiter(ticket) }
        dropConnection()
        releasePeer(failed: false)
        onFinish?(tries)
    }

    func finish(status: HTTPResponseStatus) {
        guard !finished else { return }
        markFinished()
        cancelTimers()
        queueTimer?.cancel()
        client.sendError(status)
        onFinish?(tries)
    }

    /// Headers an `X-Accel-Redirect` answer passes on: nginx's upstream headers marked
    /// `redirect`, and `Content-Type` (nginx's static handler keeps a type already set).
    static let headersKeptByAccelRedirect: Set<String> = ["content-type", "set-cookie", "content-disposition", "cache-control", "expires", "accept-ranges"]

    /// nginx's `X-Accel-Redirect`: the upstream's answer is dropped (its connection closed, its
    /// body unread) and the front serves `target` instead, typically an `internal` location
    /// that protects files the app decided to give.
    func redirectInternally(to target: String, _ head: UpstreamResponseHead) {
        var kept: [(String, String)] = []
        for field in head.fields {
            let name = head.name(field)
            if Self.headersKeptByAccelRedirect.contains(name.lowercased()) { kept.append((name, head.value(field))) }
        }
        handBackToFront { client.redirectInternally(to: target, keeping: kept) }
    }

    /// Ends the proxying before any of the upstream's answer reached the client (its connection
    /// closed unread, its server released) and lets the front answer with `answer`.
    func handBackToFront(_ answer: () -> Void) {
        markFinished()
        cancelTimers()
        dropConnection()
        releasePeer(failed: false)
        answer()
        onFinish?(tries)
    }

    /// The exchange is over: no more callbacks from the client side (which would also keep
    /// this request and the exchange alive through each other).
    func markFinished() {
        guard !finished else { return }
        finished = true
        requestSpool?.close()
        requestSpool = nil
        group.endAttempt(attempt)
        client.observer = nil
        client.onClientClose = nil
        client.onWritabilityChanged = nil
        if !tries.isEmpty, let sink = variableSink, sink.wantsUpstreamVariables {
            var values = UpstreamVariableValues(tries)
            values.responseHeaders = responseHeaderVariables
            sink.setUpstreamVariables(values)
        }
    }

    /// nginx's `(111: Connection refused)` form for system errors.
    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError {
            return "\(io.errnoCode): \(String(cString: strerror(io.errnoCode)))"
        }
        if let connect = error as? NIOConnectionError, let first = connect.connectionErrors.first {
            return describe(first.error)
        }
        return "\(error)"
    }

    func elapsed(since start: NIODeadline) -> Double {
        Double((NIODeadline.now() - start).nanoseconds) / 1e9
    }
}
