#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// gunicorn's log levels.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug, info, warning, error, critical

    public init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "warning", "warn": self = .warning
        case "error": self = .error
        case "critical": self = .critical
        default: return nil
        }
    }

    var label: String {
        switch self {
        case .debug: "DEBUG"
        case .info: "INFO"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A log destination: a file opened for appending, stdout or stderr. Lines are
/// written whole with one `write(2)`, so processes sharing a file interleave by line.
public final class LogSink: @unchecked Sendable {
    public let descriptor: Int32
    private let monitor = Monitor()

    public init(descriptor: Int32) { self.descriptor = descriptor }

    /// `-` is `standard` (stdout for access logs, stderr for error logs).
    public convenience init(path: String, standard: Int32) throws(WorkerConfigurationError) {
        if path == "-" { self.init(descriptor: standard); return }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .invalidValue(flag: "log file", value: path, reason: String(cString: strerror(errno))) }
        self.init(descriptor: fd)
    }

    public func write(_ text: String) {
        var text = text
        monitor.withLock {
            text.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if written <= 0 { if errno == EINTR { continue }; return }
                    offset += written
                }
            }
        }
    }
}

/// The worker's error log, in gunicorn's format.
public final class ErrorLog: Sendable {
    public let sink: LogSink
    public let level: LogLevel
    let pid = getpid()

    public init(sink: LogSink, level: LogLevel) {
        self.sink = sink
        self.level = level
    }

    public func log(_ level: LogLevel, _ message: String) {
        guard level >= self.level else { return }
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 48)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S %z", &parts)
        let stamp = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        sink.write("[\(stamp)] [\(pid)] [\(level.label)] \(message)\n")
    }

    public func debug(_ message: String) { log(.debug, message) }
    public func info(_ message: String) { log(.info, message) }
    public func warning(_ message: String) { log(.warning, message) }
    public func error(_ message: String) { log(.error, message) }
}

/// gunicorn's default access-log line:
/// `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`.
public struct AccessLogLine: Sendable {
    public var remoteAddr: String
    public var requestLine: String
    public var status: Int
    public var bodyBytes: Int
    public var referer: String?
    public var userAgent: String?

    public func formatted(time: String) -> String {
        "\(remoteAddr.isEmpty ? "-" : remoteAddr) - - \(time) \"\(requestLine)\" \(status) \(bodyBytes == 0 ? "-" : String(bodyBytes)) \"\(referer ?? "-")\" \"\(userAgent ?? "-")\"\n"
    }
}
