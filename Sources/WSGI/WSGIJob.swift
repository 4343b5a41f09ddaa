import NIOCore

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
    func deliver(jobID: Int, parts: [ResponsePart], written: (@Sendable () -> Void)?)
    /// The server answers instead of the app (504 after `--timeout`), then calls `then`.
    func answerForServer(_ job: WSGIJob, status: String, then: @escaping @Sendable () -> Void)
}

/// One request on its way through a Python thread: what the loop computed for
/// it and the state both sides share (under `monitor`).
final class WSGIJob: @unchecked Sendable {
    let id: Int
    let environ: CGIEnvironment
    let isHead: Bool
    let httpMinorVersion: Int
    let body: RequestBodyStream
    let sink: any ResponseSink
    /// When a Python thread took the request (queue time does not count
    /// toward `--timeout`: only a thread stuck in the app does).
    var started: NIODeadline? { monitor.withLock { startedAt } }
    private var startedAt: NIODeadline?

    private let monitor = Monitor()
    private var responseStarted = false
    private var serverAnswered = false
    private var clientGone = false
    private var unflushedBytes = 0

    static let drainHighWater = 512 * 1024

    init(id: Int, environ: CGIEnvironment, isHead: Bool, httpMinorVersion: Int, body: RequestBodyStream, sink: any ResponseSink) {
        self.id = id
        self.environ = environ
        self.isHead = isHead
        self.httpMinorVersion = httpMinorVersion
        self.body = body
        self.sink = sink
    }

    /// Python side: the app is about to run.
    func markStarted() { monitor.withLock { startedAt = .now() } }

    /// Python side: may the app's headers go out? False when the server answered
    /// instead (timeout, body too large) or the client left.
    func beginResponse() -> Bool {
        monitor.withLock {
            guard !serverAnswered, !clientGone else { return false }
            responseStarted = true
            return true
        }
    }

    /// Loop side: claims the response for a server-made answer (504, 413); false
    /// when the app's response has already started.
    func claimForServer() -> Bool {
        monitor.withLock {
            guard !responseStarted else { return false }
            serverAnswered = true
            return true
        }
    }

    var isAbandoned: Bool { monitor.withLock { serverAnswered || clientGone } }

    /// Loop side: the connection closed.
    func connectionClosed() {
        monitor.withLock {
            clientGone = true
            monitor.broadcast()
        }
        body.fail(.disconnected)
    }

    /// Python side: sends parts; waits (GIL released by the caller's `waiting`)
    /// while too many bytes are not yet on the socket.
    func send(_ parts: [ResponsePart], bytes: Int, waiting: (() -> Void) -> Void) -> Bool {
        let track = bytes > 0 && !parts.contains(where: { if case .end = $0 { true } else { false } })
        if track {
            monitor.withLock { unflushedBytes += bytes }
            sink.deliver(jobID: id, parts: parts, written: { [self] in
                monitor.withLock {
                    unflushedBytes -= bytes
                    monitor.broadcast()
                }
            })
            let mustWait = monitor.withLock { unflushedBytes > Self.drainHighWater && !clientGone }
            if mustWait {
                waiting {
                    monitor.withLock {
                        while unflushedBytes > Self.drainHighWater && !clientGone { monitor.wait() }
                    }
                }
            }
        } else {
            sink.deliver(jobID: id, parts: parts, written: nil)
        }
        return !isAbandoned
    }
}
