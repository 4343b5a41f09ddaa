#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1

/// Receives what an upstream connection delivers while it serves one proxied request.
/// Everything is called on the connection's event loop, which is the client's.
protocol UpstreamResponseDelegate: AnyObject {
    func upstreamDidReceiveHead(_ head: UpstreamResponseHead)
    func upstreamDidReceiveBody(_ buffer: ByteBuffer)
    func upstreamDidReceiveEnd()
    /// A read batch is over: ask for more when ready (`autoRead` is off for backpressure).
    func upstreamReadComplete()
    func upstreamWritabilityChanged(_ writable: Bool)
    func upstreamDidFail(_ error: any Error)
    func upstreamDidClose()
    /// `proxy_read_timeout` passed with nothing read (the connection's read timer, see `armReadTimeout`).
    func upstreamReadTimedOut()
}

/// The whole protocol of an upstream connection, as its only handler: the proxy writes the
/// request as bytes (head serialised once, body framed by `ProxyRequest`), and this handler
/// parses the response with `UpstreamResponseParser` and hands the parts to the request
/// currently using the connection; an idle pooled connection has no delegate. After a `101`
/// it becomes a byte tunnel. One handler and no codec keeps a fresh connection cheap to set
/// up and a kept-alive one cheap per request.
final class UpstreamHandler: ChannelInboundHandler, NIOScheduledCallbackHandler {
    typealias InboundIn = ByteBuffer

    /// The request using the connection. Strong, and cleared by whoever ends the use (the
    /// request when it drops or pools the connection, or this handler when the channel closes):
    /// a `weak` reference would give every request a side table, and every retain and release
    /// of it the slow path (measured: ~2 % of the stack's CPU).
    var delegate: (any UpstreamResponseDelegate)?
    /// Called when an idle (pooled) connection closes or misbehaves, so the pool drops it.
    var onIdleClose: (() -> Void)?

    private var parser: UpstreamResponseParser
    /// Bytes received and not parsed yet (a partial head, or what arrived past a 101).
    private var pending = ByteBuffer()
    private var parsing = false
    private var closed = false
    /// Set once the connection is a tunnel: raw bytes go to these.
    private var tunnelBytes: ((ByteBuffer) -> Void)?
    private var tunnelReadComplete: (() -> Void)?

    init(maxHeadSize: Int = 4096) {
        parser = UpstreamResponseParser(maxHeadSize: maxHeadSize)
    }

    /// Whether the last response left the connection reusable (`Connection`, framing, HTTP version).
    var responseAllowsKeepAlive: Bool { parser.keepAlive }

    /// A request is being sent on this connection: parse its response.
    func expectResponse(toHEAD: Bool, maxHeadSize: Int) {
        parser.maxHeadSize = maxHeadSize
        parser.expectResponse(toHEAD: toHEAD)
    }

    /// When the request using this connection times out (`proxy_read_timeout` from the last read); nil when none waits.
    private var readDeadline: NIODeadline?
    /// One timer per connection, not per request: moving the deadline is a store, and the timer,
    /// when it fires early, sleeps again until the deadline. A kept-alive connection serving many
    /// requests schedules it about once per timeout period instead of once per request.
    /// A scheduled callback, not a task: no promise or future per connection.
    private var readTimer: NIOScheduledCallback?

    func armReadTimeout(_ deadline: NIODeadline, on loop: any EventLoop) {
        readDeadline = deadline
        guard readTimer == nil else { return }
        scheduleReadTimer(at: deadline, on: loop)
    }

    /// The request is done with the connection: a pending timer finds no deadline and stops.
    func disarmReadTimeout() { readDeadline = nil }

    private func scheduleReadTimer(at deadline: NIODeadline, on loop: any EventLoop) {
        // Fails only while the event loop shuts down, when no request waits any more.
        readTimer = try? loop.assumeIsolated().scheduleCallback(at: deadline, handler: self)
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        readTimer = nil
        guard let deadline = readDeadline else { return }
        if NIODeadline.now() < deadline {
            scheduleReadTimer(at: deadline, on: eventLoop)
            return
        }
        readDeadline = nil
        delegate?.upstreamReadTimedOut()
    }

    func didCancelScheduledCallback(eventLoop: some EventLoop) {}

    private func cancelReadTimer() {
        readDeadline = nil
        readTimer?.cancel()
        readTimer = nil
    }

    /// Turns the connection into a byte tunnel (after a `101`): bytes already read past the
    /// response head are delivered at once, then every read.
    func startTunnel(onBytes: @escaping (ByteBuffer) -> Void, onReadComplete: @escaping () -> Void) {
        tunnelBytes = onBytes
        tunnelReadComplete = onReadComplete
        if pending.readableBytes > 0 {
            let early = pending
            pending = ByteBuffer()
            onBytes(early)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelReadTimer()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if let tunnelBytes {
            tunnelBytes(incoming)
            return
        }
        if pending.readableBytes == 0 {
            pending = incoming
        } else {
            pending.writeBuffer(&incoming)
        }
        parse(context: context)
    }

    private func parse(context: ChannelHandlerContext) {
        guard !parsing else { return }
        parsing = true
        defer { parsing = false }
        while !closed, tunnelBytes == nil {
            guard let delegate else {
                // Bytes on an idle keep-alive connection (or past a response): it is not reusable.
                if pending.readableBytes > 0 {
                    pending.clear()
                    closed = true
                    context.close(promise: nil)
                }
                return
            }
            let event: UpstreamResponseParser.Event?
            do {
                event = try parser.next(&pending)
            } catch {
                pending.clear()
                closed = true
                delegate.upstreamDidFail(error)
                context.close(promise: nil)
                return
            }
            guard let event else { break }
            switch event {
            case .head(let head): delegate.upstreamDidReceiveHead(head)
            case .body(let buffer): delegate.upstreamDidReceiveBody(buffer)
            case .end: delegate.upstreamDidReceiveEnd()
            }
        }
        if pending.readableBytes == 0 { pending.clear() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let tunnelReadComplete {
            tunnelReadComplete()
            return
        }
        delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let delegate { delegate.upstreamDidFail(error) }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        cancelReadTimer()
        if let delegate {
            self.delegate = nil
            if tunnelBytes == nil, parser.connectionClosed() == .end {
                // The end of a body delimited by the connection's close.
                delegate.upstreamDidReceiveEnd()
            } else {
                delegate.upstreamDidClose()
            }
        } else {
            onIdleClose?()
        }
        // Both may hold what holds this handler (the request, the pooled connection).
        onIdleClose = nil
        tunnelBytes = nil
        tunnelReadComplete = nil
        context.fireChannelInactive()
    }
}

/// One connection to an upstream peer, owned by a request or idle in the pool.
final class UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamHandler
    let address: UpstreamAddress
    var requestsServed = 0
    var idleTimer: Scheduled<Void>?
    /// When an idle pooled connection expires (`keepalive_timeout`); nil while a request uses it.
    var idleDeadline: NIODeadline?
    /// The pool of this connection's event loop, once it has been pooled. Not retained (the
    /// pool holds its idle connections), and not `weak` (a side table would make every retain of
    /// the pool slow): a `LoopPool` lives as long as its `ConnectionPool`, which outlives its connections' use.
    unowned(unsafe) var loopPool: ConnectionPool.LoopPool?
    /// The socket, when the proxy made it (a Unix socket connected at once, `UnixSocketConnect`)
    /// and NIO took it as is; nil when NIO connected it.
    let descriptor: CInt?
    /// A request with a body went out on this connection: NIO may still hold bytes of it, so a
    /// later head must queue behind them rather than be sent directly.
    var nioMayHoldWrites = false

    init(channel: any Channel, handler: UpstreamHandler, address: UpstreamAddress, descriptor: CInt? = nil) {
        self.channel = channel
        self.handler = handler
        self.address = address
        self.descriptor = descriptor
    }

    /// Sends a request head. When the socket is ours and NIO holds nothing for it, one `send(2)`
    /// of our own does it: NIO's write path (pipeline, pending-writes bookkeeping, flush) is about
    /// 5,000 instructions per call, a tenth of a proxied request's user time, for the same syscall.
    /// What `send` does not take, and any error, goes through NIO, which then writes the rest or
    /// fails the channel as it would have. Only on the channel's event loop: the channel is open
    /// there, so its descriptor cannot have been closed and reused.
    func sendHead(_ head: ByteBuffer) {
        var head = head
        if let descriptor, !nioMayHoldWrites, channel.isActive {
            #if canImport(Glibc)
            let flags = CInt(MSG_NOSIGNAL) | CInt(MSG_DONTWAIT)
            #else
            let flags = MSG_DONTWAIT
            #endif
            let sent = head.withUnsafeReadableBytes { send(descriptor, $0.baseAddress, $0.count, flags) }
            if sent == head.readableBytes { return }
            if sent > 0 { head.moveReaderIndex(forwardBy: sent) }
        }
        channel.writeAndFlush(head, promise: nil)
    }
}
