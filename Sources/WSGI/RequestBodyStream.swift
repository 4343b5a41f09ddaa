import NIOCore

/// A request body shared by the event loop (which appends what the socket
/// delivers) and a Python thread (which reads it through `wsgi.input`, waiting
/// without the GIL). Reading pauses the socket above `highWater` bytes.
final class RequestBodyStream: @unchecked Sendable {
    enum Failure: Error, CustomStringConvertible {
        case disconnected
        case tooLarge(limit: Int)
        var description: String {
            switch self {
            case .disconnected: "client disconnected before the request body was complete"
            case .tooLarge(let limit): "request body larger than \(limit) bytes"
            }
        }
    }

    enum Mode { case read, readline }

    static let highWater = 256 * 1024

    private let monitor = Monitor()
    private var buffer = BodyBuffer()
    private var failure: Failure?
    private var resumeRequested = false
    /// A reader is blocked wanting more than is buffered: reading must go on
    /// past the high-water mark (the app asked for the bytes, e.g. `read()`).
    private var readerWaiting = false
    /// Called (from a Python thread) when a paused socket may be read again.
    private let resume: @Sendable () -> Void

    /// The body of every request without one: complete and empty, shared.
    static let empty = RequestBodyStream(complete: true, resume: {})

    init(complete: Bool, resume: @escaping @Sendable () -> Void) {
        buffer.isComplete = complete
        self.resume = resume
    }

    // MARK: Event-loop side

    func append(_ bytes: ByteBuffer) {
        monitor.withLock {
            buffer.append(bytes)
            monitor.broadcast()
        }
    }

    func finish() {
        monitor.withLock {
            buffer.isComplete = true
            monitor.broadcast()
        }
    }

    func fail(_ error: Failure) {
        monitor.withLock {
            if !buffer.isComplete { failure = error }
            monitor.broadcast()
        }
    }

    var isComplete: Bool { monitor.withLock { buffer.isComplete } }

    /// True when the loop should not read more now; a reader will call `resume` later.
    func shouldPauseReading() -> Bool {
        monitor.withLock {
            guard !buffer.isComplete, buffer.count >= Self.highWater, !readerWaiting else { return false }
            resumeRequested = true
            return true
        }
    }

    // MARK: Python side

    /// Answers at once if the bytes are there (the common case: no GIL dance).
    func tryRead(_ mode: Mode, limit: Int?) -> Result<[UInt8], Failure>? {
        monitor.withLock { answerIfReady(mode, limit: limit) }
    }

    /// Waits for the bytes (call with the GIL released).
    func read(_ mode: Mode, limit: Int?) -> Result<[UInt8], Failure> {
        monitor.withLock {
            while true {
                if let answer = answerIfReady(mode, limit: limit) { return answer }
                readerWaiting = true
                if resumeRequested {
                    resumeRequested = false
                    resume()
                }
                monitor.wait()
                readerWaiting = false
            }
        }
    }

    /// Lock held.
    private func answerIfReady(_ mode: Mode, limit: Int?) -> Result<[UInt8], Failure>? {
        if limit == 0 { return .success([]) }
        let ready = mode == .read ? buffer.canAnswerRead(limit) : buffer.canAnswerReadline(limit)
        if !ready {
            if let failure { return .failure(failure) }
            return nil
        }
        let bytes = mode == .read ? buffer.take(limit) : buffer.takeLine(limit)
        if resumeRequested && buffer.count < Self.highWater / 2 {
            resumeRequested = false
            resume()
        }
        return .success(bytes)
    }
}
