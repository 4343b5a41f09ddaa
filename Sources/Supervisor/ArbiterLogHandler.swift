#if canImport(Glibc)
import Glibc
#endif
import Logging

/// Writes log lines as gunicorn does — `[2024-01-01 12:00:00 +0000] [PID] [INFO] message` —
/// to stderr or an error log file (`--error-logfile`), so existing log tooling keeps working.
public struct ArbiterLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let destination: LogDestination

    public init(destination: LogDestination, level: Logger.Level) {
        self.destination = destination
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S %z", &parts)
        let stamp = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let level = switch event.level {
        case .trace, .debug: "DEBUG"
        case .info, .notice: "INFO"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
        destination.write("[\(stamp)] [\(getpid())] [\(level)] \(event.message)\n")
    }
}

/// Where log lines go; a file is opened in append mode (shared with the workers) and can be re-opened.
public final class LogDestination: @unchecked Sendable {
    private let path: String?
    private var fd: Int32
    private let lock = PosixMutex()

    /// `nil` or `-` means stderr.
    public init(path: String?) throws(SystemError) {
        if let path, path != "-" {
            self.path = path
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw SystemError("open \(path)", errno) }
        } else {
            self.path = nil
            fd = STDERR_FILENO
        }
    }

    public func write(_ text: String) {
        let bytes = Array(text.utf8)
        lock.withLock {
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if written <= 0 { if errno == EINTR { continue }; return }
                offset += written
            }
        }
    }

    /// For logrotate (`USR1` in gunicorn, `-s reopen` in nginx).
    public func reopen() {
        guard let path else { return }
        lock.withLock {
            let next = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard next >= 0 else { return }
            close(fd)
            fd = next
        }
    }
}

/// A pthread mutex, without pulling Foundation into the log path.
final class PosixMutex: @unchecked Sendable {
    private var mutex = pthread_mutex_t()

    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
