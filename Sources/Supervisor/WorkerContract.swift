/// What an app worker process (`gantry worker`) and the process that supervises
/// it (`gantry wsgi`'s arbiter, or the full stack) agree on.
///
/// Exit codes tell a supervisor why a worker stopped, so that an app that
/// cannot be imported fails start-up at once instead of being restarted forever.
public enum WorkerExitCode: Int32, Sendable, CaseIterable {
    /// Stopped on request (graceful or fast), or recycled after `max_requests`.
    case normal = 0
    /// Any unexpected failure.
    case failure = 1
    /// The configured interpreter has no shared libpython (or it could not be loaded).
    case noSharedLibpython = 10
    /// Importing the app's module raised (the traceback is on stderr).
    case importError = 11
    /// The module imported but has no such attribute (`module:callable`).
    case callableNotFound = 12
    /// The object named is not callable (or the factory returned a non-callable).
    case notCallable = 13
    /// A `--bind` address could not be bound.
    case bindFailure = 14
    /// A request ran past `--timeout`: the worker answered it 504 and exited, since its thread is stuck in Python.
    case requestTimeout = 15
    /// The command line was refused (swift-argument-parser's `EX_USAGE`): a supervisor passed a flag the worker does not know.
    case usage = 64

    /// Codes that mean "restarting will not help": the supervisor stops and reports instead.
    public var isPermanent: Bool {
        switch self {
        case .noSharedLibpython, .importError, .callableNotFound, .notCallable, .bindFailure, .usage: true
        default: false
        }
    }
}

/// Lines a worker writes to its `--control-fd` (one message per line, ASCII).
///
/// The control fd is one end of a Unix stream socketpair. End-of-file when the
/// worker reads it (or `POLLHUP`) means the master is gone: the worker should
/// stop gracefully rather than linger as an orphan. Workers run in their own
/// process group, so terminal and group-wide signals reach only the master.
public enum WorkerControlMessage: String, Sendable, CaseIterable {
    /// The app is imported and every bind is listening.
    case ready
    /// Sent at least every `timeout / 2` while the worker's event loop is alive.
    case heartbeat
    /// `max_requests` reached: please start a replacement, then send me SIGQUIT.
    case recycle
}
