#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a worker process ended, decoded from a `waitpid` status.
public enum WorkerExit: Equatable, Sendable, CustomStringConvertible {
    case exited(code: Int32)
    case signaled(signal: Int32)

    /// Decodes a raw `waitpid` status (the `WIFEXITED`/`WTERMSIG` macros, which Swift cannot import).
    public init(waitStatus status: Int32) {
        let termination = status & 0x7f
        if termination == 0 {
            self = .exited(code: (status >> 8) & 0xff)
        } else {
            self = .signaled(signal: termination)
        }
    }

    /// The contract's meaning of the exit code, when the worker exited (rather than being killed).
    public var contractCode: WorkerExitCode? {
        if case .exited(let code) = self { return WorkerExitCode(rawValue: code) }
        return nil
    }

    /// True when restarting the same worker cannot help (e.g. the app cannot be imported).
    public var isPermanent: Bool { contractCode?.isPermanent ?? false }

    public var description: String {
        switch self {
        case .exited(let code):
            if let known = WorkerExitCode(rawValue: code), known != .normal, known != .failure {
                return "exit code \(code) (\(known.explanation))"
            }
            return "exit code \(code)"
        case .signaled(let signal):
            return "signal \(signalName(signal))"
        }
    }
}

/// `SIGKILL`-style names for log lines.
public func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGHUP: "SIGHUP"
    case SIGINT: "SIGINT"
    case SIGQUIT: "SIGQUIT"
    case SIGILL: "SIGILL"
    case SIGABRT: "SIGABRT"
    case SIGBUS: "SIGBUS"
    case SIGFPE: "SIGFPE"
    case SIGKILL: "SIGKILL"
    case SIGSEGV: "SIGSEGV"
    case SIGPIPE: "SIGPIPE"
    case SIGTERM: "SIGTERM"
    case SIGUSR1: "SIGUSR1"
    case SIGUSR2: "SIGUSR2"
    case SIGCHLD: "SIGCHLD"
    case SIGTTIN: "SIGTTIN"
    case SIGTTOU: "SIGTTOU"
    default: "signal \(signal)"
    }
}

extension WorkerExitCode {
    /// A short human explanation for log lines and start-up errors.
    public var explanation: String {
        switch self {
        case .normal: "stopped"
        case .failure: "failed"
        case .noSharedLibpython: "no shared libpython for the configured interpreter"
        case .importError: "the app module could not be imported"
        case .callableNotFound: "the app callable was not found in its module"
        case .notCallable: "the app object is not callable"
        case .bindFailure: "a listening address could not be bound"
        case .requestTimeout: "a request ran past the timeout"
        case .usage: "the worker refused its command line"
        }
    }
}
