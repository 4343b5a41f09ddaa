import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A `log_format`, compiled: the template and nginx's escaping of values.
struct LogFormat: Sendable {
    enum Escape: Sendable { case `default`, json, none }

    static let combined = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\""

    let name: String
    let template: VariableTemplate
    let escape: Escape

    init(name: String, source: String, escape: Escape) throws(VariableTemplate.CompileError) {
        self.name = name
        self.template = try VariableTemplate(source)
        self.escape = escape
    }

    /// One line; an empty variable is written `-` and unsafe bytes as `\xHH`, as nginx does.
    func render(_ variables: RequestVariables, now: Double) -> String {
        var line = ""
        for segment in template.segments {
            switch segment {
            case .literal(let text): line += text
            case .variable(let name):
                let value = VariableTemplate.value(of: name, in: variables, now: now)
                switch escape {
                case .none: line += value
                case .json: line += Self.escapeJSON(value)
                case .default:
                    if value.isEmpty { line += "-" } else { line += Self.escapeDefault(value) }
                }
            }
        }
        line += "\n"
        return line
    }

    static func escapeDefault(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 < 0x20 || $0 >= 0x7f || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
            return value
        }
        let hex = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        for b in value.utf8 {
            if b < 0x20 || b >= 0x7f || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") {
                out += [UInt8(ascii: "\\"), UInt8(ascii: "x"), hex[Int(b >> 4)], hex[Int(b & 0xF)]]
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func escapeJSON(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }
}

/// One `access_log PATH FORMAT` of a location.
struct AccessLogTarget: Sendable {
    let file: AccessLogFile
    let format: LogFormat
}

/// A log file written from a background thread: event loops append lines to
/// a memory buffer under a lock (no syscall on the loop) and the writer thread
/// flushes it every 100 ms or when it passes 64 KiB.
public final class AccessLogFile: Sendable {
    public let path: String
    private struct State {
        var descriptor: CInt = -1
        var pending: [UInt8] = []
        var running = false
        var openError: String?
    }
    private let state = Mutex(State())

    public init(path: String) {
        self.path = path
    }

    /// Opens (creating) the file for appending; the error text says why it cannot be.
    public func open() -> String? {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        if fd < 0 {
            let message = "open() \"\(path)\" failed (\(errno): \(String(cString: strerror(errno))))"
            state.withLock { $0.openError = message }
            return message
        }
        let start = state.withLock { s -> Bool in
            if s.descriptor >= 0 { Glibc.close(s.descriptor) }
            s.descriptor = fd
            defer { s.running = true }
            return !s.running
        }
        if start {
            let thread = Thread { [self] in self.writerLoop() }
            thread.name = "gantry-log"
            thread.start()
        }
        return nil
    }

    public func append(_ line: String) {
        let big = state.withLock { s -> Bool in
            guard s.descriptor >= 0 else { return false }
            s.pending.append(contentsOf: line.utf8)
            return s.pending.count > 64 * 1024
        }
        if big { flush() }
    }

    /// Writes what is buffered now (called by the writer thread, and at shutdown).
    public func flush() {
        let (fd, data) = state.withLock { s -> (CInt, [UInt8]) in
            let data = s.pending
            s.pending.removeAll(keepingCapacity: true)
            return (s.descriptor, data)
        }
        guard fd >= 0, !data.isEmpty else { return }
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { if errno == EINTR { continue }; break }
                offset += n
            }
        }
    }

    /// Flushes and stops the writer thread.
    public func close() {
        flush()
        state.withLock { s in
            s.running = false
            if s.descriptor >= 0 { Glibc.close(s.descriptor) }
            s.descriptor = -1
        }
    }

    private func writerLoop() {
        while state.withLock({ $0.running }) {
            usleep(100_000)
            flush()
        }
    }
}
