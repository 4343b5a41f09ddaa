#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `server_name` values, checked as nginx's `ngx_http_core_server_name` does.
enum ServerNameParser {
    static func parse(_ text: String, at here: SourceLocation, warnings: inout [ConfigWarning]) throws(ConfigError) -> ServerName {
        let first = text.first
        if first == "*" && (text.count < 3 || text.dropFirst().first != ".") || first == "." && text.count < 2 {
            throw ConfigError("server name \"\(text)\" is invalid", at: here)
        }
        if text.contains("/") {
            warnings.append(ConfigWarning("server name \"\(text)\" has suspicious symbols", at: here))
        }
        if text.lowercased() == "$hostname" {
            return .exact(hostName())
        }
        if first == "~" {
            let pattern = String(text.dropFirst())
            guard !pattern.isEmpty else {
                throw ConfigError("empty regex in server name \"\(text)\"", at: here)
            }
            try RegexCheck.compile(pattern, at: here)
            return .regex(pattern)
        }
        let name = text.lowercased()
        if name.hasPrefix("*.") {
            return .leadingWildcard(String(name.dropFirst()))
        }
        if name.hasPrefix(".") {
            return .leadingWildcard(name)
        }
        if name.count > 2 && name.hasSuffix(".*") {
            return .trailingWildcard(String(name.dropLast()))
        }
        // nginx takes any other name, a `*` inside included, as an exact name.
        return .exact(name)
    }

    static func hostName() -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let end = buffer.firstIndex(of: 0) ?? buffer.count
        return String(decoding: buffer[..<end], as: UTF8.self).lowercased()
    }
}

extension ServerName {
    /// The name as nginx prints it in messages (`*.example.com` as written `.example.com`).
    var configText: String {
        switch self {
        case .exact(let name): name
        case .leadingWildcard(let suffix): suffix
        case .trailingWildcard(let prefix): prefix + "*"
        case .regex(let pattern): "~" + pattern
        }
    }
}
