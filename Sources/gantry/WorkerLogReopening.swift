#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import WSGI

/// `USR1` in a worker: re-open its log files, as gunicorn's workers do, so that logrotate works
/// for the whole stack (the master forwards `-s reopen` to every worker).
///
/// Each file is opened anew and `dup2`'d onto the descriptor the log already writes to, so the
/// switch is atomic for writers on other threads and the log types need no change.
final class WorkerLogReopening {
    struct File: Sendable {
        var path: String
        var descriptor: Int32
    }

    private let source: any DispatchSourceSignal

    /// Ignores `USR1` at once (its default action would end the process), then handles it.
    init(files: [File], log: ErrorLog) {
        signal(SIGUSR1, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: DispatchQueue(label: "gantry.worker.reopen"))
        source.setEventHandler {
            for file in files { Self.reopen(file, log: log) }
            log.info("Handling signal: usr1 (log files re-opened)")
        }
        source.resume()
    }

    private static func reopen(_ file: File, log: ErrorLog) {
        let fd = open(file.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            log.error("cannot re-open \(file.path): \(String(cString: strerror(errno))); logging to the old file")
            return
        }
        if fd != file.descriptor {
            _ = dup2(fd, file.descriptor)
            _ = fcntl(file.descriptor, F_SETFD, FD_CLOEXEC)  // as the log first opened it
            close(fd)
        }
    }
}
