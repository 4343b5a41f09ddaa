import NIOCore
import NIOHTTP1

/// Receives what an upstream connection delivers while it serves one proxied request.
/// Everything is called on the connection's event loop, which is the client's.
protocol UpstreamResponseDelegate: AnyObject {
    func upstreamDidReceiveHead(_ head: HTTPResponseHead)
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

/// The last handler of an upstream connection's pipeline: hands HTTP response parts to the
/// request currently using the connection; an idle pooled connection has no delegate.
final class UpstreamHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    weak var delegate: (any UpstreamResponseDelegate)?
    /// Called when an idle (pooled) connection closes or misbehaves, so the pool drops it.
    var onIdleClose: (() -> Void)?

    /// When the request using this connection times out (`proxy_read_timeout` from the last read); nil when none waits.
    private var readDeadline: NIODeadline?
    /// One timer per connection, not per request: moving the deadline is a store, and the timer,
    /// when it fires early, sleeps again until the deadline. A kept-alive connection serving many
    /// requests schedules it about once per timeout period instead of once per request.
    private var readTimer: Scheduled<Void>?

    func armReadTimeout(_ deadline: NIODeadline, on loop: any EventLoop) {
        readDeadline = deadline
        guard readTimer == nil else { return }
        scheduleReadTimer(at: deadline, on: loop)
    }

    /// The request is done with the connection: a pending timer finds no deadline and stops.
    func disarmReadTimeout() { readDeadline = nil }

    private func scheduleReadTimer(at deadline: NIODeadline, on loop: any EventLoop) {
        readTimer = loop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            readTimer = nil
            guard let deadline = readDeadline else { return }
            if NIODeadline.now() < deadline {
                scheduleReadTimer(at: deadline, on: loop)
                return
            }
            readDeadline = nil
            delegate?.upstreamReadTimedOut()
        }
    }

    private func cancelReadTimer() {
        readDeadline = nil
        readTimer?.cancel()
        readTimer = nil
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelReadTimer()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard let delegate else {
            // Bytes on an idle keep-alive connection: it is not reusable.
            context.close(promise: nil)
            return
        }
        switch part {
        case .head(let head): delegate.upstreamDidReceiveHead(head)
        case .body(let buffer): delegate.upstreamDidReceiveBody(buffer)
        case .end: delegate.upstreamDidReceiveEnd()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
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
        cancelReadTimer()
        if let delegate {
            delegate.upstreamDidClose()
        } else {
            onIdleClose?()
        }
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

    init(channel: any Channel, handler: UpstreamHandler, address: UpstreamAddress) {
        self.channel = channel
        self.handler = handler
        self.address = address
    }
}

/// Replaces the HTTP codec on an upstream connection once it answered `101`: raw bytes from
/// the server go to the tunnel's owner, which relays them to the client.
final class TunnelHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    let onBytes: (ByteBuffer) -> Void
    let onReadComplete: () -> Void

    init(onBytes: @escaping (ByteBuffer) -> Void, onReadComplete: @escaping () -> Void) {
        self.onBytes = onBytes
        self.onReadComplete = onReadComplete
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        onBytes(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        onReadComplete()
        context.fireChannelReadComplete()
    }
}
