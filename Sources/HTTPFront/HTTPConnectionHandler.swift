import Foundation
import Logging
import NIOCore
import NIOSSL
import NIOHTTP1
import NIOPosix
import NginxConfig

/// Shared, immutable state of a running front (one per configuration).
final class FrontContext: Sendable {
    let configuration: FrontConfiguration
    let threadPool: NIOThreadPool
    let logger: Logger
    let engines: EngineRegistry
    let connectionCounter = ConnectionCounter()

    init(configuration: FrontConfiguration, threadPool: NIOThreadPool, logger: Logger) {
        self.configuration = configuration
        self.threadPool = threadPool
        self.logger = logger
        self.engines = EngineRegistry(logger: logger)
    }
}

/// One `RequestEngine` (and open-file cache) per event loop, so the hot path takes no locks.
final class EngineRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var engines: [ObjectIdentifier: RequestEngine] = [:]
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    /// Called on `loop` only; the engine it returns is used on that loop only.
    func engine(for loop: any EventLoop) -> RequestEngine {
        lock.lock()
        defer { lock.unlock() }
        let key = ObjectIdentifier(loop)
        if let engine = engines[key] { return engine }
        let engine = RequestEngine(logger: logger)
        engines[key] = engine
        return engine
    }
}

final class ConnectionCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}

/// The HTTP/1.x protocol for one client connection: parses requests (with
/// nginx's limits and answers), runs them through the front's phases one at a
/// time (pipelined requests wait in the buffer), writes responses (files by
/// sendfile), keeps the connection alive as configured, and logs each request.
final class HTTPConnectionHandler: ChannelDuplexHandler, ExchangeSink {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = IOData

    private var front: FrontContext
    private var plan: ListenerPlan
    private var engine: RequestEngine
    /// The local address the server-name table was chosen for (kept to re-choose it after a reload).
    private var localAddressKey: String?
    /// A reload arrived while a request was in flight: adopt it when that response is done.
    private var pendingReload: ConfigurationReloadedEvent?
    private var context: ChannelHandlerContext!
    private var eventLoop: any EventLoop
    private var buffer: ByteBuffer
    private var parser: HTTPRequestParser
    private var defaultServer: VirtualServer
    private var table: ServerNameTable<VirtualServer>

    private var connectionNumber = 0
    private var requestCount = 0
    private var remoteAddress = ""
    private var remotePort = ""
    private var localAddress = ""
    private var localPort = ""

    /// The request being answered; nil between requests.
    private var current: InFlight?
    private var headStartTime: Double?
    private var readPending = false
    private var bodyPaused = false
    private var closing = false
    private var quiescing = false
    private var needsFlush = false
    private var processing = false
    /// One lazily moved timer for the read timeouts: re-arming only moves `timerDeadline`,
    /// and the scheduled task re-schedules itself if it fires early (no heap work per request).
    private var timer: Scheduled<Void>?
    private var timerFireTime: NIODeadline?
    private var timerDeadline: NIODeadline?
    private var timerKind = TimerKind.idle

    private enum TimerKind {
        /// Close if no request is in progress (client_header_timeout, keepalive_timeout).
        case idle
        /// Close if the request body being discarded stopped arriving.
        case body
    }
    private var sendTimer: Scheduled<Void>?
    /// The `Server` and `Date` lines of the second `commonHeadersSecond` (see `writeCommonHeaders`).
    private var commonHeaders = ByteBuffer()
    private var commonHeadersSecond = -1
    private var commonHeadersTokens = true
    private var keepaliveTimeout: Int64 = 75_000
    /// The client shut down its sending side: no further request can arrive.
    private var inputClosed = false
    /// Set once a module switched the connection to a byte tunnel (WebSocket after 101).
    private var tunnel: ((ByteBuffer?) -> Void)?

    /// Most bytes kept in memory for pipelined requests before reading stops.
    private static let maxBuffered = 64 * 1024

    final class InFlight {
        var request: FrontRequest
        var keepAlive: Bool
        var bodyDone: Bool
        var responseDone = false
        var status = 0
        var bodyBytes = 0
        var headBytes = 0
        // Content module exchange.
        var exchange: HTTPExchange?
        var bodyConsumer: ((RequestBodyPart) -> Void)?
        var pendingBody: [ByteBuffer] = []
        var pendingBodyEnd = false
        var headSent = false
        var chunked = false
        var closeAfter = false
        var noBody = false
        /// A module's response head, held until its first body bytes (a small first part goes
        /// out in the same buffer: one write instead of two), `exchangeFlushHead` or its end.
        var pendingHead: ByteBuffer?
        /// A module's head was written and no flush followed yet.
        var unflushed = false
        /// On-the-fly gzip of a module's response (`gzip on` and its rules).
        var gzip: GzipStream?

        init(request: FrontRequest, keepAlive: Bool, bodyDone: Bool) {
            self.request = request
            self.keepAlive = keepAlive
            self.bodyDone = bodyDone
        }
    }

    init(front: FrontContext, plan: ListenerPlan, engine: RequestEngine, eventLoop: any EventLoop) {
        self.front = front
        self.plan = plan
        self.engine = engine
        self.eventLoop = eventLoop
        self.buffer = ByteBuffer()
        self.table = plan.table(forLocalAddress: nil)
        self.defaultServer = table.defaultServer
        self.parser = HTTPRequestParser(limits: defaultServer.largeHeaderBuffers)
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        connectionNumber = front.connectionCounter.next()
        let channel = context.channel
        if let remote = channel.remoteAddress {
            remoteAddress = remote.ipAddress ?? "unix:"
            remotePort = remote.port.map(String.init) ?? ""
        } else {
            remoteAddress = "unix:"
        }
        if let local = channel.localAddress {
            localAddress = local.ipAddress ?? ""
            localPort = local.port.map(String.init) ?? ""
            localAddressKey = local.ipAddress?.lowercased()
            table = plan.table(forLocalAddress: localAddressKey)
            defaultServer = table.defaultServer
            parser = HTTPRequestParser(limits: defaultServer.largeHeaderBuffers)
        }
        armTimer(milliseconds: defaultServer.clientHeaderTimeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelTimer()
        sendTimer?.cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTimer()
        sendTimer?.cancel()
        if let tunnel {
            self.tunnel = nil
            tunnel(nil)
            if let inFlight = current {
                inFlight.exchange = nil
                log(inFlight)
                current = nil
            }
        }
        if let inFlight = current, !inFlight.responseDone {
            if let consumer = inFlight.bodyConsumer, !inFlight.bodyDone {
                consumer(.failed(ChannelError.eof))
            }
            let exchange = inFlight.exchange
            inFlight.exchange = nil
            inFlight.bodyConsumer = nil
            exchange?.onClientClose?()
            exchange?.onClientClose = nil
            exchange?.onWritabilityChanged = nil
            if let observer = exchange?.observer {
                exchange?.observer = nil
                observer.exchangeClientClosed()
            }
            // nginx logs 499 when the client closes before the response.
            if inFlight.status == 0 { inFlight.status = 499 }
            log(inFlight)
            current = nil
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if let tunnel {
            tunnel(incoming)
            return
        }
        if buffer.readableBytes == 0 {
            buffer = incoming
        } else {
            buffer.writeBuffer(&incoming)
        }
        if current == nil && headStartTime == nil {
            headStartTime = Date().timeIntervalSince1970
            // A request has begun: the header timeout applies from now.
            armTimer(milliseconds: defaultServer.clientHeaderTimeout)
        }
        processBuffer()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if bodyPaused || closing || (current != nil && buffer.readableBytes > Self.maxBuffered) {
            readPending = true
            return
        }
        context.read()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        if writable {
            sendTimer?.cancel()
            sendTimer = nil
        } else if sendTimer == nil, let location = current?.request.location {
            let ms = location.sendTimeout
            // Strong captures here and in `schedule`: a `weak self` gives the handler a side table,
            // and every retain and release of it the slow path. The timers are cancelled when the
            // handler leaves the pipeline.
            sendTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(ms)) { [self] in
                front.logger.info("client timed out (110: Connection timed out) while sending response to client")
                self.context?.close(promise: nil)
            }
        }
        current?.exchange?.onWritabilityChanged?(writable)
        current?.exchange?.observer?.exchangeWritabilityChanged(writable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is GracefulShutdownEvent {
            quiescing = true
            // Idle (or only discarding a body): close once what is queued has been written.
            if current == nil || current!.responseDone { closeAfterWrites() }
            return
        }
        if let reload = event as? ConfigurationReloadedEvent {
            // Keep the connection: a request in flight finishes on the old configuration, the
            // next one is routed by the new. Closing kept-alive connections instead (as nginx's
            // old workers do) races with requests the client is already sending: those fail.
            if current == nil { adopt(reload) } else { pendingReload = reload }
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            // Half-closed by the client: nothing more can arrive, so answer what is complete, then close.
            inputClosed = true
            guard let inFlight = current else {
                closeAfterWrites()
                return
            }
            if !inFlight.bodyDone {
                inFlight.bodyDone = true
                let consumer = inFlight.bodyConsumer
                inFlight.bodyConsumer = nil
                consumer?(.failed(ChannelError.eof))
                if inFlight.responseDone { closeAfterWrites() }
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case NIOSSLError.handshakeFailed(let reason) = error {
            // nginx logs these at info: "SSL_do_handshake() failed … while SSL handshaking".
            let client = context.channel.remoteAddress?.ipAddress ?? "?"
            front.logger.info("TLS handshake failed (\(reason)) while SSL handshaking, client: \(client)")
        } else {
            front.logger.debug("connection error: \(error)")
        }
        close()
    }

    // MARK: Parsing

    private func processBuffer() {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        while !closing {
            if let inFlight = current {
                if inFlight.bodyDone { break }
                let event: HTTPRequestParser.Event?
                do { event = try parser.next(&buffer) } catch {
                    failBody(inFlight, error)
                    return
                }
                guard let event else { break }
                switch event {
                case .body(let bytes): deliverBody(inFlight, .bytes(bytes))
                case .end:
                    inFlight.bodyDone = true
                    deliverBody(inFlight, .end)
                    finishIfComplete(inFlight)
                case .head: break
                }
                continue
            }
            let event: HTTPRequestParser.Event?
            do { event = try parser.next(&buffer) } catch {
                rejectRequest(error)
                return
            }
            guard case .head(let box)? = event else { break }
            startRequest(box.head)
        }
        if current == nil, buffer.readableBytes == 0 {
            // Idle: let the last read's storage go (the next read brings its own), so an idle
            // keep-alive connection holds no read buffer.
            buffer = ByteBuffer()
        }
        if current == nil && inputClosed && !closing {
            closeAfterWrites()
        }
        flushIfNeeded()
        if readPending && !bodyPaused && !(current != nil && buffer.readableBytes > Self.maxBuffered) {
            readPending = false
            context?.read()
        }
    }

    private func flushIfNeeded() {
        if needsFlush, let context {
            needsFlush = false
            context.flush()
        }
    }

    /// A request that could not be parsed: nginx's status, a log line, and the connection closes.
    private func rejectRequest(_ error: RequestParseError) {
        let now = Date().timeIntervalSince1970
        front.logger.info("\(error.reason) while reading client request headers, client: \(remoteAddress), server: \(localAddress)")
        var response = FrontResponse.builtinPage(error.status, serverTokens: defaultServer.serverLevel.serverTokens,
                                                 allocator: context.channel.allocator)
        response.closeConnection = true
        let variables = RequestVariables(method: "", requestURI: "", uri: "", args: "", version: .http1_1, headers: [:],
                                         remoteAddress: remoteAddress, remotePort: remotePort, serverAddress: localAddress,
                                         serverPort: localPort, startTime: headStartTime ?? now)
        let head = ParsedRequestHead(method: "", target: "", version: .http1_1, headers: [:], framing: .none, length: 0)
        let request = FrontRequest(head: head, variables: variables, server: defaultServer, uri: "/", args: "")
        let inFlight = InFlight(request: request, keepAlive: false, bodyDone: true)
        inFlight.request.location = defaultServer.serverLevel
        current = inFlight
        write(response, for: inFlight)
    }

    private func startRequest(_ head: ParsedRequestHead) {
        timerDeadline = nil
        requestCount += 1
        let now = Date().timeIntervalSince1970
        let start = headStartTime ?? now
        headStartTime = nil
        let parts = URIPath.split(target: head.target)
        var hostHeader = head.headers.first(name: "host")
        // An absolute-form target names the host itself.
        if !head.target.hasPrefix("/"), let schemeEnd = head.target.range(of: "://") {
            let authority = head.target[schemeEnd.upperBound...].prefix { $0 != "/" && $0 != "?" }
            hostHeader = String(authority)
        }
        var host: String?
        var badHost = false
        if let hostHeader {
            host = ServerNameTable<VirtualServer>.normalizeHost(hostHeader)
            badHost = host == nil
        }
        let chosen = table.find(host: host)
        let server = chosen.server
        let bodyDone = head.framing == .none || head.framing == .length(0)
        let args = String(parts.query)
        let wantsKeepAlive = head.wantsKeepAlive && !quiescing
        // Built in place in its `InFlight`: each copy of a request (or of its variables) on the way costs.
        let inFlight = InFlight(
            request: FrontRequest(
                head: head,
                variables: RequestVariables(
                    method: head.method, requestURI: head.target, uri: "", args: args, version: head.version,
                    headers: head.headers, remoteAddress: remoteAddress, remotePort: remotePort, serverAddress: localAddress,
                    serverPort: localPort, scheme: plan.tls == nil ? "http" : "https", serverName: server.primaryName,
                    host: host ?? server.primaryName, startTime: start),
                server: server, uri: "/", args: args),
            keepAlive: wantsKeepAlive, bodyDone: bodyDone)
        inFlight.request.variables.connectionNumber = connectionNumber
        inFlight.request.variables.connectionRequests = requestCount
        if let captures = chosen.captures {
            inFlight.request.variables.captures = captures.captures
            inFlight.request.variables.namedCaptures = captures.named
        }
        inFlight.request.location = server.serverLevel
        current = inFlight
        inFlight.headBytes = head.length

        let normalized: String
        do {
            normalized = try URIPath.normalize(parts.path, mergeSlashes: server.mergeSlashes)
        } catch {
            front.logger.info("client sent invalid request \"\(head.method) \(head.target)\", client: \(remoteAddress)")
            var response = FrontResponse.builtinPage(.badRequest, serverTokens: server.serverLevel.serverTokens, allocator: context.channel.allocator)
            response.closeConnection = true
            write(response, for: inFlight)
            return
        }
        if badHost {
            front.logger.info("client sent invalid host header while reading client request headers, client: \(remoteAddress)")
            var response = FrontResponse.builtinPage(.badRequest, serverTokens: server.serverLevel.serverTokens, allocator: context.channel.allocator)
            response.closeConnection = true
            write(response, for: inFlight)
            return
        }
        inFlight.request.uri = normalized
        inFlight.request.originalURI = normalized
        inFlight.request.variables.uri = normalized
        runEngine(inFlight)
    }

    private func runEngine(_ inFlight: InFlight) {
        guard current === inFlight, !closing else { return }
        let step = engine.process(&inFlight.request)
        refreshStaleEntries()
        switch step {
        case .respond(let response):
            write(response, for: inFlight)
        case .probe(let key):
            let pool = front.threadPool
            let loop = context.eventLoop
            pool.runIfActive(eventLoop: loop) { FileSystem.probe(key) }.hop(to: loop).assumeIsolated().whenComplete { [self] (result: Result<FileProbe, any Error>) in
                switch result {
                case .success(let probe):
                    engine.store(key, probe)
                    runEngine(inFlight)
                case .failure:
                    var response = FrontResponse.builtinPage(.internalServerError, serverTokens: true, allocator: context?.channel.allocator ?? ByteBufferAllocator())
                    response.closeConnection = true
                    write(response, for: inFlight)
                }
            }
        case .compress(let file, let level):
            let loop = context.eventLoop
            let key = RequestEngine.GzipKey(inode: file.inode, modificationTime: file.modificationTime, size: file.size, level: level)
            front.threadPool.runIfActive(eventLoop: loop) { Gzip.compress(file: file, level: level) }.hop(to: loop).assumeIsolated().whenComplete { [self] (result: Result<ByteBuffer?, any Error>) in
                if case .success(let compressed?) = result {
                    engine.storeCompressed(compressed, for: key)
                    runEngine(inFlight)
                } else {
                    var response = FrontResponse.builtinPage(.internalServerError, serverTokens: true, allocator: context?.channel.allocator ?? ByteBufferAllocator())
                    response.closeConnection = true
                    write(response, for: inFlight)
                }
            }
        case .content(let handler, let location):
            let head = inFlight.request.head
            // After an internal redirect (try_files, index, error_page) the module sees the new URI, as nginx's upstream does.
            var target = head.target
            if inFlight.request.uri != inFlight.request.originalURI || inFlight.request.inErrorPage {
                let args = inFlight.request.args
                target = URIPath.escape(inFlight.request.uri) + (args.isEmpty ? "" : "?" + args)
            }
            let requestHead = HTTPRequestHead(version: head.version, method: HTTPMethod(rawValue: head.method), uri: target, headers: head.headers)
            let hasBody = head.framing != .none && head.framing != .length(0)
            var bodyLength: Int?
            if case .length(let n) = head.framing { bodyLength = n }
            let exchange = HTTPExchange(head: requestHead, variables: inFlight.request.variables, location: location.scope,
                                        channel: context.channel, requestBodyLength: bodyLength, hasRequestBody: hasBody, sink: self)
            exchange.logsModuleVariables = !location.accessLogs.isEmpty
            inFlight.exchange = exchange
            handler.handle(exchange)
        }
    }

    /// Re-probes, off the loop, the cache entries the engine answered from while stale.
    private func refreshStaleEntries() {
        let keys = engine.takeStaleKeys()
        guard !keys.isEmpty else { return }
        let engine = self.engine
        let loop = eventLoop
        for key in keys {
            front.threadPool.runIfActive(eventLoop: loop) { FileSystem.probe(key) }.hop(to: loop).assumeIsolated()
                .whenComplete { result in
                    switch result {
                    case .success(let probe): engine.store(key, probe)
                    case .failure: engine.forgetRefresh(key)
                    }
                }
        }
    }

    // MARK: Writing responses

    private func write(_ response: FrontResponse, for inFlight: InFlight) {
        guard let context, current === inFlight else { return }
        var response = response
        let location = response.location ?? inFlight.request.location ?? defaultServer.serverLevel
        if response.closeWithoutResponse {
            // `return 444`: close without a response.
            inFlight.status = 444
            inFlight.responseDone = true
            inFlight.keepAlive = false
            log(inFlight)
            current = nil
            close()
            return
        }
        keepaliveTimeout = location.keepaliveTimeout
        var keepAlive = inFlight.keepAlive && !response.closeConnection && location.keepaliveTimeout > 0
            && requestCount < location.keepaliveRequests
        inFlight.keepAlive = keepAlive

        for (name, value) in inFlight.request.keptHeaders {
            // X-Accel-Redirect: the upstream's Set-Cookie, Content-Disposition, Cache-Control, …
            // win; its Content-Type too, but not over an error page's (nginx's text/html).
            let lower = name.lowercased()
            if lower == "content-type" && response.status.code >= 300 { continue }
            if lower != "set-cookie" { response.headers.removeAll { $0.0.lowercased() == lower } }
            response.headers.append((name, value))
        }
        if response.location != nil { applyHeaderFilters(&response, location: location, request: inFlight.request) }
        // nginx's order: Server, Date, Content-Type, Content-Length, Last-Modified, Location,
        // Connection, Keep-Alive, then the other headers as the phases added them.
        var head = context.channel.allocator.buffer(capacity: 256)
        writeStatusLine(&head, response.status)
        writeCommonHeaders(&head, location: location)
        if let type = response.headers.first(where: { $0.0 == "Content-Type" }) {
            head.writeString("Content-Type: \(type.1)\r\n")
        }
        if let length = response.contentLength {
            head.writeString("Content-Length: \(length)\r\n")
        }
        for name in ["Last-Modified", "Location"] {
            if let header = response.headers.first(where: { $0.0 == name }) { head.writeString("\(name): \(header.1)\r\n") }
        }
        head.writeString(keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n")
        if keepAlive, let header = location.keepaliveHeaderTimeout { head.writeString("Keep-Alive: timeout=\(header)\r\n") }
        for (name, value) in response.headers where name != "Content-Type" && name != "Last-Modified" && name != "Location" {
            head.writeString("\(name): \(value)\r\n")
        }
        head.writeString("\r\n")
        inFlight.headBytes = head.readableBytes
        inFlight.status = Int(response.status.code)
        context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil)
        var bodyBytes = 0
        if !response.suppressBody {
            for piece in response.body {
                switch piece {
                case .bytes(let bytes):
                    bodyBytes += bytes.readableBytes
                    context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: nil)
                case .file(let file, let start, let end):
                    guard let region = file.region(from: start, to: end) else {
                        keepAlive = false
                        inFlight.keepAlive = false
                        break
                    }
                    bodyBytes += end - start
                    let promise = context.eventLoop.makePromise(of: Void.self)
                    promise.futureResult.whenComplete { _ in try? region.fileHandle.close() }
                    context.write(wrapOutboundOut(.fileRegion(region)), promise: promise)
                }
            }
        }
        inFlight.bodyBytes = bodyBytes
        needsFlush = true
        responseFinished(inFlight)
    }

    /// `expires` and `add_header`, for the statuses nginx applies them to.
    private func applyHeaderFilters(_ response: inout FrontResponse, location: LocationSettings, request: FrontRequest) {
        let code = Int(response.status.code)
        let success = [200, 201, 204, 206, 301, 302, 303, 304, 307, 308].contains(code)
        if success, let expires = location.expires {
            let now = Int(time(nil))
            var lastModified: Int?
            if let text = response.headers.first(where: { $0.0 == "Last-Modified" })?.1 { lastModified = HTTPDate.parse(text) }
            switch expires {
            case .epoch:
                response.headers.append(("Expires", "Thu, 01 Jan 1970 00:00:01 GMT"))
                response.headers.append(("Cache-Control", "no-cache"))
            case .max:
                response.headers.append(("Expires", "Thu, 31 Dec 2037 23:55:55 GMT"))
                response.headers.append(("Cache-Control", "max-age=315360000"))
            case .relative(let seconds):
                response.headers.append(("Expires", HTTPDate.rfc1123(now + seconds)))
                response.headers.append(("Cache-Control", seconds < 0 ? "no-cache" : "max-age=\(seconds)"))
            case .modified(let seconds):
                let at = (lastModified ?? now) + seconds
                response.headers.append(("Expires", HTTPDate.rfc1123(at)))
                let age = at - now
                response.headers.append(("Cache-Control", age <= 0 ? "no-cache" : "max-age=\(age)"))
            }
        }
        for addition in location.addHeaders where addition.always || success {
            let value = addition.value.render(request.variables)
            if !value.isEmpty { response.headers.append((addition.name, value)) }
        }
    }

    private func writeStatusLine(_ head: inout ByteBuffer, _ status: HTTPResponseStatus) {
        if case .ok = status {
            head.writeStaticString("HTTP/1.1 200 OK\r\n")
            return
        }
        // Piecewise: no interpolated String per response.
        head.writeStaticString("HTTP/1.1 ")
        let code = Int(status.code)
        head.writeInteger(UInt8(48 + code / 100 % 10))
        head.writeInteger(UInt8(48 + code / 10 % 10))
        head.writeInteger(UInt8(48 + code % 10))
        head.writeStaticString(" ")
        head.writeString(status.nginxReason)
        head.writeStaticString("\r\n")
    }

    private func writeCommonHeaders(_ head: inout ByteBuffer, location: LocationSettings) {
        // `Server` and `Date` lines as bytes, made again only when the second (or server_tokens) changes:
        // a kept-alive connection copies them per response instead of formatting them.
        let second = Int(time(nil))
        if second != commonHeadersSecond || location.serverTokens != commonHeadersTokens {
            commonHeadersSecond = second
            commonHeadersTokens = location.serverTokens
            var lines = ByteBuffer()
            lines.writeStaticString("Server: ")
            lines.writeString(location.serverTokens ? FrontServerInfo.nameAndVersion : FrontServerInfo.name)
            lines.writeStaticString("\r\nDate: ")
            lines.writeString(HTTPDate.now())
            lines.writeStaticString("\r\n")
            commonHeaders = lines
        }
        head.writeImmutableBuffer(commonHeaders)
    }

    /// Headers of a module's response the front writes itself (`Connection`, `Transfer-Encoding`,
    /// `Keep-Alive`, `Server`, `Date`): compared in place, no lowercased copy per header.
    static func isContentLength(_ name: String) -> Bool {
        name.utf8.count == 14 && name.lowercased() == "content-length"
    }

    static func isFrontOwnedHeader(_ name: String) -> Bool {
        let lowercase: StaticString
        switch name.utf8.count {
        case 10: lowercase = name.utf8.first.map({ $0 | 0x20 }) == UInt8(ascii: "c") ? "connection" : "keep-alive"
        case 17: lowercase = "transfer-encoding"
        case 6: lowercase = "server"
        case 4: lowercase = "date"
        default: return false
        }
        var offset = 0
        let expected = lowercase.utf8Start
        for byte in name.utf8 {
            let folded = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
            if folded != expected[offset] { return false }
            offset += 1
        }
        return true
    }

    /// The response is queued: log it, then serve the next request or close.
    private func responseFinished(_ inFlight: InFlight) {
        inFlight.responseDone = true
        finishIfComplete(inFlight)
    }

    private func finishIfComplete(_ inFlight: InFlight) {
        guard inFlight.responseDone, current === inFlight else { return }
        if !inFlight.keepAlive {
            log(inFlight)
            current = nil
            closeAfterWrites()
            return
        }
        // The request body must be read (and discarded) before the next request.
        guard inFlight.bodyDone else {
            armBodyTimer()
            return
        }
        log(inFlight)
        current = nil
        if let reload = pendingReload {
            pendingReload = nil
            adopt(reload)
        }
        if quiescing {
            closeAfterWrites()
            return
        }
        if buffer.readableBytes == 0 {
            armTimer(milliseconds: keepaliveTimeout)
        } else {
            headStartTime = Date().timeIntervalSince1970
            armTimer(milliseconds: defaultServer.clientHeaderTimeout)
        }
        if !processing {
            processBuffer()
        }
    }

    /// Switches this connection to the configuration a reload installed.
    private func adopt(_ reload: ConfigurationReloadedEvent) {
        (front, plan) = reload.currentPlan(plan)
        engine = front.engines.engine(for: eventLoop)
        table = plan.table(forLocalAddress: localAddressKey)
        defaultServer = table.defaultServer
    }

    private func closeAfterWrites() {
        guard let context, !closing else { return }
        closing = true
        needsFlush = false
        cancelTimer()
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer())), promise: promise)
        promise.futureResult.assumeIsolated().whenComplete { [self] _ in
            close()
        }
    }

    private func close() {
        closing = true
        cancelTimer()
        guard let context else { return }
        context.close(promise: nil)
    }

    /// A body being discarded after the response must keep arriving (nginx: `client_body_timeout`, 60 s).
    private func armBodyTimer() {
        setTimer(.body, deadline: .now() + .seconds(60))
    }

    private func armTimer(milliseconds: Int64) {
        setTimer(.idle, deadline: .now() + .milliseconds(milliseconds))
    }

    private func setTimer(_ kind: TimerKind, deadline: NIODeadline) {
        timerKind = kind
        timerDeadline = deadline
        if let fireTime = timerFireTime, fireTime <= deadline { return }
        schedule(at: deadline)
    }

    private func schedule(at deadline: NIODeadline) {
        timer?.cancel()
        guard let context else { return }
        timerFireTime = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timerFired()
        }
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerFireTime = nil
        timerDeadline = nil
    }

    private func timerFired() {
        timer = nil
        timerFireTime = nil
        guard let deadline = timerDeadline else { return }
        if deadline > .now() {
            schedule(at: deadline)
            return
        }
        timerDeadline = nil
        switch timerKind {
        case .idle:
            if current == nil { close() }
        case .body:
            if let inFlight = current, !inFlight.bodyDone { close() }
        }
    }

    private func log(_ inFlight: InFlight) {
        guard let location = inFlight.request.location, !location.accessLogs.isEmpty else { return }
        var variables = inFlight.request.variables
        variables.status = inFlight.status
        variables.bodyBytesSent = inFlight.bodyBytes
        variables.bytesSent = inFlight.bodyBytes + inFlight.headBytes
        let now = Date().timeIntervalSince1970
        for target in location.accessLogs {
            target.file.append(target.format.render(variables, now: now))
        }
    }

    // MARK: Request body delivery

    private func deliverBody(_ inFlight: InFlight, _ part: RequestBodyPart) {
        guard inFlight.exchange != nil else { return }
        if let consumer = inFlight.bodyConsumer {
            consumer(part)
        } else {
            switch part {
            case .bytes(let bytes): inFlight.pendingBody.append(bytes)
            case .end: inFlight.pendingBodyEnd = true
            case .failed: break
            }
        }
    }

    private func failBody(_ inFlight: InFlight, _ error: RequestParseError) {
        front.logger.info("\(error.reason), client: \(remoteAddress)")
        if let consumer = inFlight.bodyConsumer { consumer(.failed(error)) }
        inFlight.bodyDone = true
        if inFlight.responseDone || inFlight.headSent {
            close()
        } else {
            inFlight.exchange = nil
            var response = FrontResponse.builtinPage(error.status, serverTokens: true, allocator: context.channel.allocator)
            response.closeConnection = true
            write(response, for: inFlight)
        }
    }

    // MARK: ExchangeSink

    func exchangeReadBody(_ exchange: HTTPExchange, _ onPart: @escaping (RequestBodyPart) -> Void) {
        guard let inFlight = current, inFlight.exchange === exchange else { return }
        inFlight.bodyConsumer = onPart
        let head = inFlight.request.head
        if !inFlight.bodyDone, head.version.minor >= 1, !inFlight.headSent,
           head.headers.first(name: "expect")?.lowercased() == "100-continue", let context {
            // The client waits for this before sending the body (nginx sends it when the body is first read).
            var interim = context.channel.allocator.buffer(capacity: 25)
            interim.writeString("HTTP/1.1 100 Continue\r\n\r\n")
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(interim)), promise: nil)
        }
        let pending = inFlight.pendingBody
        inFlight.pendingBody = []
        for bytes in pending { onPart(.bytes(bytes)) }
        if inFlight.pendingBodyEnd || (inFlight.bodyDone && inFlight.request.head.framing != .chunked && !hasBodyFraming(inFlight)) {
            inFlight.pendingBodyEnd = false
            onPart(.end)
        }
    }

    private func hasBodyFraming(_ inFlight: InFlight) -> Bool {
        switch inFlight.request.head.framing {
        case .none, .length(0): return false
        default: return true
        }
    }

    func exchangeSetBodyPaused(_ exchange: HTTPExchange, _ paused: Bool) {
        guard current?.exchange === exchange else { return }
        bodyPaused = paused
        if !paused {
            processBuffer()
        }
    }

    func exchangeSendHead(_ exchange: HTTPExchange, _ responseHead: HTTPResponseHead) {
        let hasLength = responseHead.headers.contains(name: "content-length")
        sendModuleHead(exchange, status: responseHead.status, hasContentLength: hasLength, hold: false,
                       headers: { responseHead.headers }) { head, dropContentLength in
            for (name, value) in responseHead.headers {
                if Self.isFrontOwnedHeader(name) { continue }
                if dropContentLength, Self.isContentLength(name) { continue }
                // No interpolated String per header line.
                head.writeHeaderLine(name, value)
            }
        }
    }

    /// A module's head whose header lines are bytes already (the proxy's); they must not hold
    /// the lines the front writes itself (`Server`, `Date`, `Connection`, framing).
    func exchangeSendHeadLines(_ exchange: HTTPExchange, status: HTTPResponseStatus, headerLines: ByteBuffer,
                               hasContentLength: Bool) {
        sendModuleHead(exchange, status: status, hasContentLength: hasContentLength, hold: true,
                       headers: { HTTPHeaders(HeaderLineReader.fields(of: headerLines)) }) { head, dropContentLength in
            guard dropContentLength else {
                head.writeImmutableBuffer(headerLines)
                return
            }
            for (name, value) in HeaderLineReader.fields(of: headerLines) where !Self.isContentLength(name) {
                head.writeHeaderLine(name, value)
            }
        }
    }

    /// `exchangeSendHeadLines` with the lines written in place. Where gzip may apply (its rules read the
    /// headers as values, and a gzipped answer drops `Content-Length`) the lines get a buffer of their own first.
    func exchangeSendHeadWriting(_ exchange: HTTPExchange, status: HTTPResponseStatus, hasContentLength: Bool,
                                 _ writeLines: (inout ByteBuffer) -> Void) {
        guard let inFlight = current, inFlight.exchange === exchange, let context else { return }
        if (inFlight.request.location ?? defaultServer.serverLevel).gzip != nil {
            var lines = context.channel.allocator.buffer(capacity: 256)
            writeLines(&lines)
            exchangeSendHeadLines(exchange, status: status, headerLines: lines, hasContentLength: hasContentLength)
            return
        }
        // Without gzip nothing reads the headers and `Content-Length` is never dropped.
        sendModuleHead(exchange, status: status, hasContentLength: hasContentLength, hold: true,
                       headers: { HTTPHeaders() }) { head, _ in writeLines(&head) }
    }

    /// Sends a held head now (the module has no body bytes at hand: the client must not wait for them).
    func exchangeFlushHead(_ exchange: HTTPExchange) {
        guard let inFlight = current, inFlight.exchange === exchange, inFlight.pendingHead != nil, let context else { return }
        _ = writePendingHead(inFlight, context: context)
        context.flush()
    }

    /// `headers` gives the module's headers as values (read only for gzip's rules); `writeHeaders`
    /// writes its header lines, without `Content-Length` when told (the answer is gzipped).
    private func sendModuleHead(_ exchange: HTTPExchange, status: HTTPResponseStatus, hasContentLength: Bool, hold: Bool,
                                headers: () -> HTTPHeaders, writeHeaders: (inout ByteBuffer, _ dropContentLength: Bool) -> Void) {
        guard let inFlight = current, inFlight.exchange === exchange, let context, !inFlight.headSent else { return }
        inFlight.headSent = true
        let location = inFlight.request.location ?? defaultServer.serverLevel
        // `add_header`/`expires` lines, only when the location has some (a response value and
        // passing the request cost a copy of each).
        var addedHeaders: [(String, String)] = []
        if location.expires != nil || !location.addHeaders.isEmpty {
            var response = FrontResponse(status: status)
            response.location = location
            applyHeaderFilters(&response, location: location, request: inFlight.request)
            addedHeaders = response.headers
        }
        let code = Int(status.code)
        inFlight.noBody = inFlight.request.isHead || code == 204 || code == 304 || code < 200
        // gzip on the fly (only looked at where the location has `gzip on`).
        var gzipDecision = (vary: false, compress: false)
        if location.gzip != nil {
            gzipDecision = self.gzipDecision(headers(), status: code, request: &inFlight.request, location: location)
            if gzipDecision.compress, let level = location.gzip?.level { inFlight.gzip = GzipStream(level: level) }
        }
        let hasContentLength = hasContentLength && inFlight.gzip == nil
        var keepAlive = inFlight.keepAlive && location.keepaliveTimeout > 0 && requestCount < location.keepaliveRequests
        if !hasContentLength && !inFlight.noBody {
            if inFlight.request.head.version.minor >= 1 {
                inFlight.chunked = true
            } else {
                keepAlive = false
            }
        }
        inFlight.keepAlive = keepAlive
        var head = context.channel.allocator.buffer(capacity: 512)
        writeStatusLine(&head, status)
        writeCommonHeaders(&head, location: location)
        writeHeaders(&head, inFlight.gzip != nil)
        if inFlight.gzip != nil { head.writeStaticString("Content-Encoding: gzip\r\n") }
        if gzipDecision.vary && location.gzipVary { head.writeStaticString("Vary: Accept-Encoding\r\n") }
        if inFlight.chunked { head.writeStaticString("Transfer-Encoding: chunked\r\n") }
        head.writeStaticString(keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n")
        if keepAlive, let header = location.keepaliveHeaderTimeout { head.writeString("Keep-Alive: timeout=\(header)\r\n") }
        for (name, value) in addedHeaders { head.writeString("\(name): \(value)\r\n") }
        head.writeStaticString("\r\n")
        inFlight.status = code
        inFlight.headBytes = head.readableBytes
        if hold {
            inFlight.pendingHead = head
        } else {
            context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil)
            inFlight.unflushed = true
        }
    }

    /// Writes a held module head (see `InFlight.pendingHead`). With `data` small and not chunked,
    /// the two go out as one buffer, flushed, and this returns true (the data is written).
    private func writePendingHead(_ inFlight: InFlight, context: ChannelHandlerContext, with data: IOData? = nil,
                                  promise: EventLoopPromise<Void>? = nil) -> Bool {
        guard var head = inFlight.pendingHead else { return false }
        inFlight.pendingHead = nil
        if let data, !inFlight.chunked, case .byteBuffer(var bytes) = data, bytes.readableBytes <= 4096 {
            head.writeBuffer(&bytes)
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(head)), promise: promise)
            return true
        }
        context.write(wrapOutboundOut(.byteBuffer(head)), promise: nil)
        return false
    }

    /// nginx's gzip header filter for a module's answer: an answer that could be compressed (`gzip
    /// on`, status 200/403/404, no `Content-Encoding` yet, long enough — `gzip_min_length`, when the
    /// length is known —, a type in `gzip_types`, a body to send) gets `Vary` (with `gzip_vary on`),
    /// and is compressed when the client takes gzip and `ngx_http_gzip_ok` agrees.
    private func gzipDecision(_ headers: HTTPHeaders, status: Int, request: inout FrontRequest,
                              location: LocationSettings) -> (vary: Bool, compress: Bool) {
        guard let gzip = location.gzip, status == 200 || status == 403 || status == 404, !request.isHead else {
            return (false, false)
        }
        if let encoding = headers.first(name: "content-encoding"), !encoding.isEmpty { return (false, false) }
        if let length = headers.first(name: "content-length").flatMap(Int.init), length < gzip.minLength { return (false, false) }
        let type = headers.first(name: "content-type")?.split(separator: ";").first
            .map { $0.trimmingSpaces().lowercased() } ?? ""
        guard gzip.anyType || gzip.types.contains(type) else { return (false, false) }
        guard request.acceptsGzip else { return (true, false) }
        let requestHeaders = request.head.headers
        let facts = GzipPolicy.Request(major: request.head.version.major, minor: request.head.version.minor,
                                       hasVia: requestHeaders.contains(name: "via"),
                                       hasAuthorization: requestHeaders.contains(name: "authorization"),
                                       userAgent: requestHeaders.first(name: "user-agent"))
        return (true, location.gzipPolicy.allows(facts, .moduleResponse(headers, now: Int(Glibc.time(nil)))))
    }

    /// A body piece as it goes out: compressed when the response is gzipped on the fly. Nil
    /// when it cannot be (a file region: modules ask `acceptsFileRegions` first); the response
    /// is then cut, as a truncated answer is all that is left to give.
    private func compressed(_ data: IOData, _ inFlight: InFlight, _ context: ChannelHandlerContext) -> IOData? {
        guard let gzip = inFlight.gzip else { return data }
        guard case .byteBuffer(let bytes) = data else {
            front.logger.error("a content module sent a file region in a response gzipped on the fly; the response is cut")
            if let exchange = inFlight.exchange { exchangeAbort(exchange) }
            return nil
        }
        guard bytes.readableBytes > 0 else { return data }
        return .byteBuffer(gzip.compress(bytes, allocator: context.channel.allocator))
    }

    /// False while the response is compressed on the fly: body pieces must then be bytes.
    func exchangeAcceptsFileRegions(_ exchange: HTTPExchange) -> Bool {
        guard let inFlight = current, inFlight.exchange === exchange else { return true }
        return inFlight.gzip == nil
    }

    func exchangeSendBody(_ exchange: HTTPExchange, _ data: IOData) -> EventLoopFuture<Void> {
        guard let inFlight = current, inFlight.exchange === exchange, let context, inFlight.headSent, !inFlight.responseDone else {
            return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        if inFlight.noBody { return context.eventLoop.makeSucceededVoidFuture() }
        guard let data = compressed(data, inFlight, context) else { return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        let count = data.readableBytes
        guard count > 0 else { return context.eventLoop.makeSucceededVoidFuture() }
        inFlight.bodyBytes += count
        inFlight.unflushed = false
        let promise = context.eventLoop.makePromise(of: Void.self)
        if writePendingHead(inFlight, context: context, with: data, promise: promise) { return promise.futureResult }
        if inFlight.chunked {
            var prefix = context.channel.allocator.buffer(capacity: 16)
            prefix.writeString(String(count, radix: 16) + "\r\n")
            context.write(wrapOutboundOut(.byteBuffer(prefix)), promise: nil)
            context.write(wrapOutboundOut(data), promise: nil)
            var suffix = context.channel.allocator.buffer(capacity: 2)
            suffix.writeString("\r\n")
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(suffix)), promise: promise)
        } else {
            context.writeAndFlush(wrapOutboundOut(data), promise: promise)
        }
        return promise.futureResult
    }

    /// `exchangeSendBody` for a caller that does not wait for the write: no promise, no future.
    func exchangeWriteBody(_ exchange: HTTPExchange, _ data: IOData) {
        guard let inFlight = current, inFlight.exchange === exchange, let context, inFlight.headSent, !inFlight.responseDone,
              !inFlight.noBody else { return }
        guard let data = compressed(data, inFlight, context) else { return }
        let count = data.readableBytes
        guard count > 0 else { return }
        inFlight.bodyBytes += count
        inFlight.unflushed = false
        if writePendingHead(inFlight, context: context, with: data) { return }
        if inFlight.chunked {
            var prefix = context.channel.allocator.buffer(capacity: 16)
            prefix.writeString(String(count, radix: 16))
            prefix.writeStaticString("\r\n")
            context.write(wrapOutboundOut(.byteBuffer(prefix)), promise: nil)
            context.write(wrapOutboundOut(data), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer(staticString: "\r\n"))), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(data), promise: nil)
        }
    }

    func exchangeSendEnd(_ exchange: HTTPExchange) {
        guard let inFlight = current, inFlight.exchange === exchange, let context, inFlight.headSent, !inFlight.responseDone else { return }
        // Body writes flush as they go: only a held head, a gzip tail or the last chunk needs a flush here.
        let heldHead = inFlight.pendingHead != nil
        _ = writePendingHead(inFlight, context: context)
        if let gzip = inFlight.gzip, !inFlight.noBody {
            inFlight.gzip = nil
            let tail = gzip.finish(allocator: context.channel.allocator)
            if tail.readableBytes > 0 {
                inFlight.bodyBytes += tail.readableBytes
                if inFlight.chunked {
                    var prefix = context.channel.allocator.buffer(capacity: 16)
                    prefix.writeString(String(tail.readableBytes, radix: 16))
                    prefix.writeStaticString("\r\n")
                    context.write(wrapOutboundOut(.byteBuffer(prefix)), promise: nil)
                    context.write(wrapOutboundOut(.byteBuffer(tail)), promise: nil)
                    context.write(wrapOutboundOut(.byteBuffer(ByteBuffer(staticString: "\r\n"))), promise: nil)
                } else {
                    context.write(wrapOutboundOut(.byteBuffer(tail)), promise: nil)
                }
                inFlight.unflushed = true
            }
        }
        let lastChunk = inFlight.chunked && !inFlight.noBody
        if lastChunk {
            context.write(wrapOutboundOut(.byteBuffer(ByteBuffer(staticString: "0\r\n\r\n"))), promise: nil)
        }
        if heldHead || lastChunk || inFlight.unflushed { needsFlush = true }
        inFlight.unflushed = false
        inFlight.exchange = nil
        let bodyPending = !inFlight.bodyDone
        if bodyPending {
            // The module did not read the whole body: discard the rest, as nginx does.
            inFlight.bodyConsumer = nil
        }
        // A pause is the exchange's (backpressure on its body): it ends with the exchange, also when
        // the body's last bytes came while it was paused (else the next request is never read).
        let wasPaused = bodyPaused
        bodyPaused = false
        responseFinished(inFlight)
        flushIfNeeded()
        if (bodyPending || wasPaused) && !processing { processBuffer() }
    }

    func exchangeSendError(_ exchange: HTTPExchange, _ status: HTTPResponseStatus) {
        guard let inFlight = current, inFlight.exchange === exchange, !inFlight.headSent, !inFlight.responseDone else { return }
        inFlight.exchange = nil
        inFlight.bodyConsumer = nil
        bodyPaused = false
        let location = inFlight.request.location ?? defaultServer.serverLevel
        switch engine.processError(status, &inFlight.request, location: location) {
        case .respond(let response): write(response, for: inFlight)
        default: runEngine(inFlight)
        }
        flushIfNeeded()
    }

    func exchangeHasErrorPage(_ exchange: HTTPExchange, _ status: HTTPResponseStatus) -> Bool {
        guard let inFlight = current, inFlight.exchange === exchange else { return false }
        return (inFlight.request.location ?? defaultServer.serverLevel).errorPages[Int(status.code)] != nil
    }

    func exchangeRedirectInternally(_ exchange: HTTPExchange, to target: String, keeping headers: [(String, String)]) {
        guard let inFlight = current, inFlight.exchange === exchange, !inFlight.headSent, !inFlight.responseDone else { return }
        inFlight.exchange = nil
        inFlight.bodyConsumer = nil
        bodyPaused = false
        switch engine.redirectInternally(to: target, keeping: headers, &inFlight.request) {
        case .respond(let response): write(response, for: inFlight)
        default: runEngine(inFlight)
        }
        flushIfNeeded()
    }

    func exchangeSetVariable(_ exchange: HTTPExchange, _ name: String, _ value: String) {
        guard let inFlight = current, inFlight.exchange === exchange else { return }
        inFlight.request.variables.moduleValues[name] = value
    }

    func exchangeSwitchToTunnel(_ exchange: HTTPExchange, _ responseHead: HTTPResponseHead, onBytes: @escaping (ByteBuffer?) -> Void) {
        guard let inFlight = current, inFlight.exchange === exchange, let context, !inFlight.headSent else { return }
        inFlight.headSent = true
        inFlight.status = Int(responseHead.status.code)
        cancelTimer()
        let location = inFlight.request.location ?? defaultServer.serverLevel
        var head = context.channel.allocator.buffer(capacity: 256)
        writeStatusLine(&head, responseHead.status)
        writeCommonHeaders(&head, location: location)
        for (name, value) in responseHead.headers {
            let lower = name.lowercased()
            if lower == "server" || lower == "date" || lower == "content-length" || lower == "transfer-encoding" { continue }
            head.writeString("\(name): \(value)\r\n")
        }
        head.writeString("\r\n")
        inFlight.headBytes = head.readableBytes
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(head)), promise: nil)
        tunnel = onBytes
        // Bytes the client sent after the request head already belong to the tunnel.
        if buffer.readableBytes > 0 {
            let early = buffer
            buffer = ByteBuffer()
            onBytes(early)
        }
    }

    func exchangeSendTunnelBytes(_ exchange: HTTPExchange, _ bytes: ByteBuffer) -> EventLoopFuture<Void> {
        guard let inFlight = current, inFlight.exchange === exchange, let context, tunnel != nil else {
            return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
        }
        inFlight.bodyBytes += bytes.readableBytes
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(bytes)), promise: promise)
        return promise.futureResult
    }

    func exchangeAbort(_ exchange: HTTPExchange) {
        guard let inFlight = current, inFlight.exchange === exchange else { return }
        inFlight.keepAlive = false
        inFlight.responseDone = true
        inFlight.exchange = nil
        log(inFlight)
        current = nil
        close()
    }
}

/// Sent to every connection when the server stops: finish the current response, then close.
struct GracefulShutdownEvent: Sendable {}

/// `gantry -s reload` switched the configuration: this connection adopts it between requests.
struct ConfigurationReloadedEvent: Sendable {
    /// The new configuration's context and plan for the listener a connection came in on.
    let currentPlan: @Sendable (ListenerPlan) -> (FrontContext, ListenerPlan)
}
