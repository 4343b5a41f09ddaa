import Foundation
import Logging

/// A swift-log handler writing nginx-style `error_log` lines
/// (`2026/11/21 15:04:05 [error] 1234#0: message`) through a buffered file
/// writer, so logging from an event loop never waits on the disk.
public struct ErrorLogHandler: LogHandler {
    private let file: AccessLogFile
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level

    public init(file: AccessLogFile, level: Logger.Level) {
        self.file = file
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// nginx's level names: `debug info notice warn error crit alert emerg`.
    public static func level(nginxName: String) -> Logger.Level? {
        switch nginxName {
        case "debug": return .debug
        case "info": return .info
        case "notice": return .notice
        case "warn": return .warning
        case "error": return .error
        case "crit", "alert", "emerg": return .critical
        default: return nil
        }
    }

    private static func nginxName(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: return "debug"
        case .info: return "info"
        case .notice: return "notice"
        case .warning: return "warn"
        case .error: return "error"
        case .critical: return "crit"
        }
    }

    public func log(event: LogEvent) {
        let stamp = HTTPDate.errorLogFormat(Date().timeIntervalSince1970)
        file.append("\(stamp) [\(Self.nginxName(event.level))] \(getpid())#0: \(event.message)\n")
    }
}
