#if canImport(Glibc)
import Glibc
#endif

/// The write end of the self-pipe; the only thing the signal handler touches.
nonisolated(unsafe) private var signalPipeWriteFD: Int32 = -1

/// Signals turned into a queue, as gunicorn's `SIG_QUEUE`: the handler only
/// `write`s the signal number to a pipe (async-signal-safe); whoever calls
/// ``next(timeout:)`` does the real work on an ordinary thread.
///
/// One per process (signal dispositions are process-wide).
public final class SignalQueue: @unchecked Sendable {
    private let readFD: Int32

    /// Installs handlers for `signals`.
    public init(signals: [Int32]) throws(SystemError) {
        precondition(signalPipeWriteFD == -1, "one SignalQueue per process")
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else { throw SystemError("socketpair", errno) }
        readFD = fds[0]
        signalPipeWriteFD = fds[1]
        for number in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                let saved = errno
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipeWriteFD, &byte, 1)
                errno = saved
            }
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            guard sigaction(number, &action, nil) == 0 else { throw SystemError("sigaction \(signalName(number))", errno) }
        }
    }

    /// The next signal, or nil after `timeout` seconds (nil: wait forever). `0` is ``wake()``.
    public func next(timeout: Double? = nil) -> Int32? {
        while true {
            var byte: UInt8 = 0
            if read(readFD, &byte, 1) == 1 { return Int32(byte) }
            var descriptor = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
            let milliseconds = timeout.map { Int32(($0 * 1000).rounded(.up)) } ?? -1
            let ready = poll(&descriptor, 1, milliseconds)
            if ready == 0 { return nil }
            if ready < 0 && errno != EINTR { return nil }
        }
    }

    /// Makes ``next(timeout:)`` return `0` (from any thread).
    public func wake() {
        var byte: UInt8 = 0
        _ = write(signalPipeWriteFD, &byte, 1)
    }
}
