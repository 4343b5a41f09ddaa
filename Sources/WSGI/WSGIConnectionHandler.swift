import NIOCore

/// One HTTP/1.1 connection of a worker: parses requests (`RequestParser`, on
/// the bytes as they arrive), hands each to the Python threads as a `WSGIJob`, streams the body
/// into it with backpressure, and frames the response parts that come back.
/// One request at a time per connection; pipelined ones wait, in order.
final class WSGIConnectionHandler: ChannelDuplexHandler, ResponseRecipient {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let server: WSGIServerCore
    private let bind: WorkerBind
    private var peer: PeerAddress = .unix
    private var context: ChannelHandlerContext?

    private var current: WSGIJob?
    private var currentKeepAlive = false
    private var currentBodyDone = true
    private var currentBodyBytes = 0
    private var plan: ResponsePlan?
    private var responseStatus = 0
    private var responseBodyBytes = 0
    /// A request answered by the server (404/413): its body is skipped until `.end`.
    private var skippingBody = false
    private var closeAfterSkip = false
    /// An early answer's last write and the lingering close's deadline (see `lingerAfterEarlyAnswer`).
    private var lingerWrite: EventLoopFuture<Void>?
    private var lingerTimer: Scheduled<Void>?
    private var waiting = CircularBuffer<RequestPart>()
    private var parser = RequestParser()
    /// Bytes read but not yet parsed (a partial head or chunk line).
    private var unparsed: ByteBuffer?
    private var readPending = false
    private var closed = false
    private var idleTimer: Scheduled<Void>?
    /// When the connection, idle now, is closed; nil while a request runs.
    private var idleDeadline: NIODeadline?
    private var idleCheckAt: NIODeadline?
    private var servedAny = false

    /// The connection's socket (owned by NIO; see `WSGIJob.descriptor`).
    private let descriptor: Int32

    init(server: WSGIServerCore, bind: WorkerBind, descriptor: Int32) {
        self.server = server
        self.bind = bind
        self.descriptor = descriptor
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        server.connectionOpened()
        if case .tcp = bind, let address = context.channel.remoteAddress, let ip = address.ipAddress {
            peer = .inet(ip: ip, port: address.port ?? 0)
        }
        armIdleTimer(context: context)
    }

    /// The context, the sink and the timer all point back at this handler:
    /// drop them so the connection's objects are freed.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        server.connectionClosed()
        sink = nil
        idleTimer?.cancel()
        idleTimer = nil
        lingerTimer?.cancel()
        lingerTimer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        sink = nil  // it refers back to this handler
        idleTimer?.cancel()
        if let current {
            current.connectionClosed()
        }
        context.fireChannelInactive()
    }

    // MARK: Reading, with backpressure

    func read(context: ChannelHandlerContext) {
        if mayRead() {
            context.read()
        } else {
            readPending = true
        }
    }

    /// Reading goes on while a response is pending (so the socket's epoll
    /// interest is not toggled per request, and a client leaving is noticed),
    /// up to a few buffered parts of a pipelined next request.
    private func mayRead() -> Bool {
        guard let current else { return waiting.count < Self.waitingLimit }
        if currentBodyDone { return waiting.count < Self.waitingLimit }
        return !current.body.shouldPauseReading()
    }

    static let waitingLimit = 32

    private func resumeReadingIfAllowed() {
        guard readPending, let context, mayRead() else { return }
        readPending = false
        context.read()
    }

    /// From a Python thread (through the loop): the body was drained.
    func bodyDrained(jobID: Int) {
        guard current?.id == jobID else { return }
        resumeReadingIfAllowed()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        var buffer = unwrapInboundIn(data)
        if var earlier = unparsed {
            unparsed = nil
            earlier.writeBuffer(&buffer)
            buffer = earlier
        }
        do {
            while !closed, let part = try parser.next(&buffer) {
                received(part, context: context)
            }
        } catch {
            badRequest(error, context: context)
            return
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            unparsed = buffer
        }
    }

    private func received(_ part: RequestPart, context: ChannelHandlerContext) {
        if skippingBody {
            if case .end = part {
                skippingBody = false
                lingerTimer?.cancel()
                lingerTimer = nil
                lingerWrite = nil
                if closeAfterSkip { closeAfterLingering(context: context); return }
                processWaiting()
            }
            return
        }
        if current == nil, waiting.isEmpty {
            process(part, context: context)
        } else if let current, !currentBodyDone {
            process(part, context: context, job: current)
        } else {
            waiting.append(part)
        }
    }

    private func process(_ part: RequestPart, context: ChannelHandlerContext, job: WSGIJob? = nil) {
        switch part {
        case .head(let head):
            start(head, context: context)
        case .body(let bytes):
            guard let job else { return }
            currentBodyBytes += bytes.readableBytes
            let limit = server.settings.limitRequestBody
            if limit > 0, currentBodyBytes > limit {
                job.body.fail(.tooLarge(limit: limit))
                server.log.warning("request body over --limit-request-body \(limit): \(job.environ.requestMethod) \(job.environ.rawURI)")
                answerForServer(job, status: "413 Request Entity Too Large")
                return
            }
            job.body.append(bytes)
        case .end:
            guard let job else { return }
            currentBodyDone = true
            job.body.finish()
        }
    }

    private func processWaiting() {
        while current == nil, !skippingBody, !closed, let part = waiting.popFirst(), let context {
            process(part, context: context)
        }
        while let current, !currentBodyDone, let part = waiting.popFirst(), let context {
            process(part, context: context, job: current)
        }
        if current == nil, !skippingBody, let context { armIdleTimer(context: context) }
        resumeReadingIfAllowed()
    }

    private func start(_ head: ParsedHead, context: ChannelHandlerContext) {
        idleDeadline = nil
        servedAny = true
        let info = RequestHeadInfo(method: head.method, uri: head.uri, versionMajor: 1,
                                   versionMinor: head.versionMinor, headers: head.headers)
        let declaredLength = head.contentLength
        let hasBody = head.hasBody
        let environ: CGIEnvironment
        do {
            environ = try CGIEnvironment.build(head: info, peer: peer, server: bind, settings: server.settings.environ)
        } catch {
            server.log.info("\(head.method) \(head.uri): outside the root path \"\(server.settings.environ.rootPath)\": 404")
            answerDirectly("404 Not Found", minor: head.versionMinor, skipBody: hasBody, keepAlive: false)
            return
        }
        let limit = server.settings.limitRequestBody
        if limit > 0, declaredLength > limit {
            server.log.warning("request body of \(declaredLength) bytes over --limit-request-body \(limit): \(head.method) \(head.uri)")
            answerDirectly("413 Request Entity Too Large", minor: head.versionMinor, skipBody: false, keepAlive: false)
            return
        }
        if environ.expectsContinue, hasBody, head.versionMinor >= 1 {
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n"))), promise: nil)
        }
        let sink = connectionSink(context)
        let id = server.nextJobID()
        let body: RequestBodyStream
        if hasBody {
            body = RequestBodyStream(complete: false, resume: {
                sink.eventLoop.execute { sink.handler.value.bodyDrained(jobID: id) }
            })
        } else {
            body = RequestBodyStream.empty
        }
        let job = WSGIJob(id: id, environ: environ, isHead: head.isHead, httpMinorVersion: head.versionMinor,
                          body: body, sink: sink, descriptor: descriptor)
        current = job
        currentKeepAlive = head.keepAlive
        currentBodyDone = false
        currentBodyBytes = 0
        plan = nil
        responseStatus = 0
        responseBodyBytes = 0
        if hasBody || !server.runInlineIfIdle(job) { server.submit(job) }
    }

    /// One sink per connection, made on first use (on the loop).
    private var sink: ConnectionSink?
    private func connectionSink(_ context: ChannelHandlerContext) -> ConnectionSink {
        if let sink { return sink }
        let made = ConnectionSink(mailbox: server.mailbox(for: context.eventLoop), handler: self, eventLoop: context.eventLoop)
        sink = made
        return made
    }

    /// A response the server makes before any job exists (404 outside root, 413).
    private func answerDirectly(_ status: String, minor: Int, skipBody: Bool, keepAlive: Bool) {
        guard let context else { return }
        let buffer = SimpleResponse.make(status, httpMinorVersion: minor)
        if skipBody {
            skippingBody = true
            closeAfterSkip = true
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(buffer))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// The server answers for a running job (504 timeout, 413 too large), or cuts the connection.
    func answerForServer(_ job: WSGIJob, status: String, then: (@Sendable () -> Void)? = nil) {
        guard let context, current?.id == job.id, !closed else { then?(); return }
        if job.claimForServer() {
            responseStatus = Int(status.prefix(3)) ?? 0
            let buffer = SimpleResponse.make(status, httpMinorVersion: job.httpMinorVersion)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(buffer))).whenComplete { _ in
                channel.close(promise: nil)
                then?()
            }
        } else {
            context.close(promise: nil)
            then?()
        }
    }

    // MARK: Writing what the Python thread produced

    func deliver(jobID: Int, parts: [ResponsePart], written: (@Sendable () -> Void)?) {
        guard let context, let job = current, job.id == jobID, !closed else {
            for case .file(let region) in parts { try? region.fileHandle.close() }
            written?()
            return
        }
        // Writes go out with no promise (none is allocated) except the last,
        // and that one only when someone waits for it (backpressure, close).
        var out: ByteBuffer?
        var held: IOData?
        var fileWrite: EventLoopFuture<Void>?
        func hold(_ data: IOData) {
            if let previous = held { context.write(wrapOutboundOut(previous), promise: nil) }
            held = data
            fileWrite = nil
        }
        func pushOut() {
            if let buffer = out, buffer.readableBytes > 0 { hold(.byteBuffer(buffer)) }
            out = nil
        }
        var ended: Bool?
        for part in parts {
            switch part {
            case .head(let head):
                let plan = ResponsePlan(head: head, isHead: job.isHead, httpMinorVersion: job.httpMinorVersion,
                                        requestKeepAlive: currentKeepAlive, draining: server.isDraining)
                self.plan = plan
                responseStatus = head.statusCode
                var buffer = context.channel.allocator.buffer(capacity: 512)
                plan.encode(head, httpMinorVersion: job.httpMinorVersion, date: HTTPDate.shared.header(), into: &buffer)
                out = buffer
            case .body(let bytes):
                guard let plan else { continue }
                responseBodyBytes += bytes.readableBytes
                switch plan.framing {
                case .noBody:
                    continue
                case .chunked:
                    if out == nil { out = context.channel.allocator.buffer(capacity: bytes.readableBytes + 16) }
                    out!.writeString(String(bytes.readableBytes, radix: 16))
                    out!.writeStaticString("\r\n")
                    out!.writeImmutableBuffer(bytes)
                    out!.writeStaticString("\r\n")
                case .contentLength, .untilClose:
                    if bytes.readableBytes > 16 * 1024 {
                        pushOut()
                        hold(.byteBuffer(bytes))
                    } else if out == nil {
                        out = bytes
                    } else {
                        out!.writeImmutableBuffer(bytes)
                    }
                }
            case .file(let region):
                pushOut()
                if let previous = held { context.write(wrapOutboundOut(previous), promise: nil) }
                held = nil
                responseBodyBytes += region.readableBytes
                let write = context.write(wrapOutboundOut(.fileRegion(region)))
                write.whenComplete { _ in try? region.fileHandle.close() }
                fileWrite = write
            case .end(let complete):
                if complete, case .chunked = plan?.framing {
                    if out == nil { out = context.channel.allocator.buffer(capacity: 5) }
                    out!.writeStaticString("0\r\n\r\n")
                }
                ended = complete
            }
        }
        pushOut()
        var lastWrite = fileWrite
        if let last = held {
            let closing = ended.map { !willKeepAlive(complete: $0) } ?? false
            if written != nil || closing {
                lastWrite = context.write(wrapOutboundOut(last))
            } else {
                context.write(wrapOutboundOut(last), promise: nil)
            }
        }
        context.flush()
        if let written {
            if let lastWrite { lastWrite.whenComplete { _ in written() } } else { written() }
        }
        if let complete = ended { finishResponse(job, complete: complete, lastWrite: lastWrite, context: context) }
    }

    private func willKeepAlive(complete: Bool) -> Bool {
        // Not `isDraining` again: the head promised what `plan` says (draining was read when it
        // was made), and a client told keep-alive may already be sending its next request, which
        // then gets `Connection: close`. A drain that starts between the two must not cut it.
        complete && (plan?.keepAlive ?? false) && currentBodyDone
    }

    private func finishResponse(_ job: WSGIJob, complete: Bool, lastWrite: EventLoopFuture<Void>?, context: ChannelHandlerContext) {
        server.logAccess(job, status: responseStatus, bodyBytes: responseBodyBytes)
        let keepAlive = willKeepAlive(complete: complete)
        let headSaidKeepAlive = plan?.keepAlive ?? false
        current = nil
        plan = nil
        if complete, !currentBodyDone, !closed, !server.isDraining {
            lingerAfterEarlyAnswer(thenKeepAlive: headSaidKeepAlive, lastWrite: lastWrite, context: context)
            return
        }
        if !keepAlive {
            closed = true
            if let lastWrite {
                let channel = context.channel
                lastWrite.whenComplete { _ in channel.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
            return
        }
        processWaiting()
    }

    /// The app answered without reading the whole request body. Closing now would make the peer's
    /// pending body writes fail (EPIPE/reset) and could lose the answer it has not read yet — a
    /// proxy in front would answer 502. So the rest of the body is read and dropped first (at most
    /// `lingeringTime`); then the connection serves its next request when the answer promised
    /// keep-alive (as gunicorn), else closes (nginx's lingering close).
    private func lingerAfterEarlyAnswer(thenKeepAlive: Bool, lastWrite: EventLoopFuture<Void>?, context: ChannelHandlerContext) {
        skippingBody = true
        closeAfterSkip = !thenKeepAlive
        lingerWrite = lastWrite
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        lingerTimer = context.eventLoop.scheduleTask(in: Self.lingeringTime) {
            let handler = loopBound.value
            guard !handler.closed, handler.skippingBody, let context = handler.context else { return }
            handler.closed = true
            context.close(promise: nil)
        }
        resumeReadingIfAllowed()
    }

    static let lingeringTime = TimeAmount.seconds(30)

    /// The rest of an unread body arrived: close once the answer is written.
    private func closeAfterLingering(context: ChannelHandlerContext) {
        closed = true
        lingerTimer?.cancel()
        lingerTimer = nil
        if let lingerWrite {
            let channel = context.channel
            self.lingerWrite = nil
            lingerWrite.whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.close(promise: nil)
        }
    }

    // MARK: Errors and idleness

    /// Bytes that are not a request: the status it deserves when nothing is
    /// running or queued on the connection, else just a close.
    private func badRequest(_ error: RequestParseError, context: ChannelHandlerContext) {
        guard current == nil, waiting.isEmpty, !skippingBody else {
            server.log.info("bad request data from \(peerDescription) during a request: \(error)")
            closed = true
            context.close(promise: nil)
            return
        }
        server.log.info("bad request from \(peerDescription): \(error): \(error.status.prefix(3))")
        closed = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(SimpleResponse.make(error.status)))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        server.log.debug("connection error from \(peerDescription): \(error)")
        context.close(promise: nil)
    }

    private var peerDescription: String {
        switch peer {
        case .inet(let ip, let port): "\(ip):\(port)"
        case .unix: "unix socket peer"
        }
    }

    /// Closes a connection that sits without a request: `--keep-alive` between
    /// requests, a longer head timeout for a new connection. Arming only moves
    /// a deadline; one scheduled check per connection follows it (no timer is
    /// created and cancelled per request).
    private func armIdleTimer(context: ChannelHandlerContext) {
        let seconds = servedAny ? server.settings.keepAlive : server.settings.headerTimeout
        guard seconds > 0 else { idleDeadline = nil; return }
        let deadline = NIODeadline.now() + .nanoseconds(Int64(seconds * 1e9))
        idleDeadline = deadline
        if let scheduled = idleCheckAt, idleTimer != nil, scheduled <= deadline { return }
        idleTimer?.cancel()  // none yet, or one too late (the longer head timeout)
        scheduleIdleCheck(at: deadline, context: context)
    }

    private func scheduleIdleCheck(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleCheckAt = deadline
        idleTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let handler = loopBound.value
            handler.idleTimer = nil
            guard !handler.closed, handler.current == nil, let due = handler.idleDeadline, let context = handler.context else { return }
            if NIODeadline.now() >= due {
                handler.closed = true
                context.close(promise: nil)
            } else {
                handler.scheduleIdleCheck(at: due, context: context)
            }
        }
    }
}

/// How a Python thread reaches its connection: always through the loop
/// (responses through the worker's `ResponseMailbox`). A class, made once per
/// connection: each job holds one reference, not a boxed copy of its fields.
final class ConnectionSink: ResponseSink {
    let mailbox: ResponseMailbox
    let handler: NIOLoopBound<WSGIConnectionHandler>
    /// The same handler, as the mailbox's recipient.
    let recipient: NIOLoopBound<any ResponseRecipient>
    var eventLoop: any EventLoop { mailbox.eventLoop }

    init(mailbox: ResponseMailbox, handler: WSGIConnectionHandler, eventLoop: any EventLoop) {
        self.mailbox = mailbox
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.recipient = NIOLoopBound(handler, eventLoop: eventLoop)
    }

    func deliver(jobID: Int, parts: [ResponsePart], written: (@Sendable () -> Void)?, mayWait: Bool) {
        mailbox.post(.init(handler: recipient, jobID: jobID, parts: parts, written: written), mayWait: mayWait)
    }

    func answerForServer(_ job: WSGIJob, status: String, then: @escaping @Sendable () -> Void) {
        eventLoop.execute { [handler] in handler.value.answerForServer(job, status: status, then: then) }
    }
}
