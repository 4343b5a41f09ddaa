import NIOCore
import NIOPosix

/// Turns `FileRegion` writes (static files and spooled proxy answers are sent with sendfile)
/// into byte writes, for a TLS connection: the bytes must pass through the TLS handler to be
/// encrypted, and swift-nio-ssl refuses file regions. The file is read off the event loop in
/// 64 KiB pieces, the next piece only once the previous one was written (backpressure: a slow
/// client holds one piece in memory, not the file); writes and flushes that come meanwhile wait
/// their turn, so bytes leave in the order they were written.
final class FileRegionReadingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    static let pieceSize = 64 * 1024

    private enum Waiting {
        case write(IOData, EventLoopPromise<Void>?)
        case flush
    }

    private let fileIO: NonBlockingFileIO
    private var reading = false
    private var waiting = CircularBuffer<Waiting>()

    init(fileIO: NonBlockingFileIO) {
        self.fileIO = fileIO
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let data = unwrapOutboundIn(data)
        if reading {
            waiting.append(.write(data, promise))
            return
        }
        send(context: context, data, promise)
    }

    func flush(context: ChannelHandlerContext) {
        if reading {
            waiting.append(.flush)
        } else {
            context.flush()
        }
    }

    private func send(context: ChannelHandlerContext, _ data: IOData, _ promise: EventLoopPromise<Void>?) {
        guard case .fileRegion(let region) = data else {
            context.write(wrapOutboundOut(data), promise: promise)
            return
        }
        reading = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        fileIO.readChunked(fileRegion: region, chunkSize: Self.pieceSize, allocator: context.channel.allocator,
                           eventLoop: context.eventLoop) { piece in
            let (handler, context) = loopBound.value
            return context.writeAndFlush(handler.wrapOutboundOut(.byteBuffer(piece)))
        }.hop(to: context.eventLoop).whenComplete { result in
            let (handler, context) = loopBound.value
            promise?.completeWith(result)
            handler.reading = false
            if case .failure(let error) = result {
                handler.failWaiting(error)
            } else {
                handler.sendWaiting(context: context)
            }
        }
    }

    /// Sends what waited, until the next file region (which waits for its own reading).
    private func sendWaiting(context: ChannelHandlerContext) {
        while !reading, let next = waiting.popFirst() {
            switch next {
            case .write(let data, let promise): send(context: context, data, promise)
            case .flush: context.flush()
            }
        }
    }

    private func failWaiting(_ error: any Error) {
        while let next = waiting.popFirst() {
            if case .write(_, let promise) = next { promise?.fail(error) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failWaiting(ChannelError.ioOnClosedChannel)
    }
}
