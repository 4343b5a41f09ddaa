import NIOCore
import Synchronization

/// One piece of a response, sent from a Python thread to the connection's loop.
enum ResponsePart: Sendable {
    case head(ResponseHead)
    case body(ByteBuffer)
    case file(FileRegion)
    /// The response is over; `complete == false` means it is cut short (close the connection).
    case end(complete: Bool)
}

/// Delivers response parts to a connection's event loop.
protocol ResponseSink: Sendable {
    /// `mayWait`: the parts may wait a little for more to go with them (see `ResponseMailbox`).
    func deliver(jobID: Int, parts: [ResponsePart], written: (@Sendable () -> Void)?, mayWait: Bool)
    /// The server answers instead of the app (504 after `--timeout`), then calls `then`.
    func answerForServer(_ job: WSGIJob, status: String, then: @escaping @Sendable () -> Void)
}

/// One request on its way through a Python thread: what the loop computed for
/// it and the state both sides share (atomics: no lock per request; the
/// backpressure wait of big responses uses `drainMonitor`).
final class WSGIJob: @unchecked Sendable {
    let id: Int
    let environ: CGIEnvironment
    let isHead: Bool
    let httpMinorVersion: Int
    let body: RequestBodyStream
    let sink: any ResponseSink
    /// The connection's socket, for a 504 written while the app holds the event loop.
    let descriptor: Int32
    private let onLoop = Atomic<Bool>(false)
    /// The app runs it on the event loop (`PythonWorker.runInline`), which it then blocks.
    var isOnLoop: Bool { onLoop.load(ordering: .acquiring) }
    func setOnLoop(_ value: Bool) { onLoop.store(value, ordering: .releasing) }
    /// When a Python thread took the request (queue time does not count
    /// toward `--timeout`: only a thread stuck in the app does).
    var started: NIODeadline? {
        let nanos = startedAt.load(ordering: .acquiring)
        return nanos == 0 ? nil : NIODeadline.uptimeNanoseconds(UInt64(nanos))
    }
    private let startedAt = Atomic<Int64>(0)

    private struct Flags {
        static let responseStarted: UInt8 = 1
        static let serverAnswered: UInt8 = 2
        static let clientGone: UInt8 = 4
    }
    private let flags = Atomic<UInt8>(0)
    private let unflushedBytes = Atomic<Int>(0)

    static let drainHighWater = 512 * 1024
    /// Where Python threads wait for big responses to drain (rare: one for all jobs).
    private static let drainMonitor = Monitor()

    init(id: Int, environ: CGIEnvironment, isHead: Bool, httpMinorVersion: Int, body: RequestBodyStream, sink: any ResponseSink,
         descriptor: Int32 = -1) {
        self.id = id
        self.descriptor = descriptor
        self.environ = environ
        self.isHead = isHead
        self.httpMinorVersion = httpMinorVersion
        self.body = body
        self.sink = sink
    }

    /// Python side: the app is about to run.
    func markStarted() { startedAt.store(max(1, Int64(NIODeadline.now().uptimeNanoseconds)), ordering: .releasing) }

    /// Sets `bit` unless one of `unless` is set; false when one was.
    private func setFlag(_ bit: UInt8, unless: UInt8) -> Bool {
        var current = flags.load(ordering: .relaxed)
        while true {
            if current & unless != 0 { return false }
            let (exchanged, original) = flags.compareExchange(expected: current, desired: current | bit, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
    }

    /// Python side: may the app's headers go out? False when the server answered
    /// instead (timeout, body too large) or the client left.
    func beginResponse() -> Bool { setFlag(Flags.responseStarted, unless: Flags.serverAnswered | Flags.clientGone) }

    /// Loop side: claims the response for a server-made answer (504, 413); false
    /// when the app's response has already started.
    func claimForServer() -> Bool { setFlag(Flags.serverAnswered, unless: Flags.responseStarted) }

    var isAbandoned: Bool { flags.load(ordering: .acquiring) & (Flags.serverAnswered | Flags.clientGone) != 0 }

    private var isClientGone: Bool { flags.load(ordering: .acquiring) & Flags.clientGone != 0 }

    /// Loop side: the connection closed.
    func connectionClosed() {
        flags.bitwiseOr(Flags.clientGone, ordering: .acquiringAndReleasing)
        Self.drainMonitor.withLock { Self.drainMonitor.broadcast() }
        body.fail(.disconnected)
    }

    /// Python side: sends parts; waits (GIL released by the caller's `waiting`)
    /// while too many bytes are not yet on the socket.
    /// `mayWait`: a complete response may wait a little (see `ResponseMailbox`).
    func send(_ parts: [ResponsePart], bytes: Int, ends: Bool, mayWait: Bool = false, waiting: (() -> Void) -> Void) -> Bool {
        if bytes > 0 && !ends {
            unflushedBytes.add(bytes, ordering: .acquiringAndReleasing)
            sink.deliver(jobID: id, parts: parts, written: { [self] in
                unflushedBytes.subtract(bytes, ordering: .acquiringAndReleasing)
                Self.drainMonitor.withLock { Self.drainMonitor.broadcast() }
            }, mayWait: false)
            if mustWaitForDrain {
                waiting {
                    Self.drainMonitor.withLock {
                        while mustWaitForDrain { Self.drainMonitor.wait() }
                    }
                }
            }
        } else {
            sink.deliver(jobID: id, parts: parts, written: nil, mayWait: mayWait && ends)
        }
        return !isAbandoned
    }

    private var mustWaitForDrain: Bool {
        unflushedBytes.load(ordering: .acquiring) > Self.drainHighWater && !isClientGone
    }
}
