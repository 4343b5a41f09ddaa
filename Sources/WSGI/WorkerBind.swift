/// Where a worker listens: gunicorn's `--bind` syntax.
public enum WorkerBind: Equatable, Sendable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    /// `HOST:PORT`, `[V6]:PORT`, `:PORT` (all IPv4 interfaces), `HOST` (port 8000), `unix:PATH`.
    public init(parsing text: String) throws(WorkerConfigurationError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw .invalidBind(text, "empty socket path") }
            self = .unix(path: path)
            return
        }
        if text.hasPrefix("fd://") { throw .invalidBind(text, "use --listen-fd FD for inherited sockets") }
        var host = text
        var portText = "8000"
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .invalidBind(text, "unclosed [") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.hasPrefix(":") { portText = String(rest.dropFirst()) } else if !rest.isEmpty { throw .invalidBind(text, "junk after ]") }
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
        }
        if host.isEmpty { host = "0.0.0.0" }
        guard let port = Int(portText), (0...65535).contains(port) else { throw .invalidBind(text, "invalid port \"\(portText)\"") }
        self = .tcp(host: host, port: port)
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }
}

/// A bad worker flag, worded so the user can fix the command line.
public enum WorkerConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    case invalidBind(String, String)
    case invalidForwardedAddress(String)
    case invalidValue(flag: String, value: String, reason: String)

    public var description: String {
        switch self {
        case .invalidBind(let text, let reason): "invalid --bind \"\(text)\": \(reason)"
        case .invalidForwardedAddress(let text): "invalid address \"\(text)\" in --forwarded-allow-ips (expected IPs, CIDRs, \"unix\" or \"*\")"
        case .invalidValue(let flag, let value, let reason): "invalid \(flag) \"\(value)\": \(reason)"
        }
    }
}
