import NginxConfig

/// nginx's virtual-server choice among the servers of one listen address:
/// exact name, then the longest leading wildcard (`*.example.com`,
/// `.example.com`), then the longest trailing wildcard (`www.example.*`), then
/// the first regex in config order; otherwise the address's default server.
public struct ServerNameTable<Server: Sendable>: Sendable {
    private var exact: [String: Server] = [:]
    private var leading: [(suffix: String, alsoBare: Bool, server: Server)] = []
    private var trailing: [(prefix: String, server: Server)] = []
    private var regexes: [(regex: ConfigRegex, server: Server)] = []
    public let defaultServer: Server

    public init(defaultServer: Server) {
        self.defaultServer = defaultServer
    }

    /// Adds a server's names; the first server to claim a name keeps it (nginx warns about the conflict).
    public mutating func add(_ names: [ServerName], server: Server) throws(ConfigRegex.CompileError) {
        for name in names {
            switch name {
            case .exact(let host):
                let key = host.lowercased()
                if exact[key] == nil { exact[key] = server }
            case .leadingWildcard(let pattern):
                // `*.example.com` → suffix `.example.com`; `.example.com` also matches `example.com`.
                let alsoBare = pattern.hasPrefix(".")
                let suffix = alsoBare ? pattern.lowercased() : String(pattern.lowercased().dropFirst())
                leading.append((suffix, alsoBare, server))
                leading.sort { $0.suffix.count > $1.suffix.count }
            case .trailingWildcard(let pattern):
                trailing.append((String(pattern.lowercased().dropLast()), server))
                trailing.sort { $0.prefix.count > $1.prefix.count }
            case .regex(let source):
                let body = source.hasPrefix("~") ? String(source.dropFirst()) : source
                regexes.append((try ConfigRegex(body, caseInsensitive: true), server))
            }
        }
    }

    /// The server for `host` (already lowercased, port removed), and the regex match if a regex chose it.
    public func find(host: String?) -> (server: Server, captures: ConfigRegex.Match?) {
        guard let host, !host.isEmpty else { return (defaultServer, nil) }
        if let server = exact[host] { return (server, nil) }
        for entry in leading {
            if host.hasSuffix(entry.suffix) && host.count > entry.suffix.count { return (entry.server, nil) }
            if entry.alsoBare && host == entry.suffix.dropFirst() { return (entry.server, nil) }
        }
        for entry in trailing where host.hasPrefix(entry.prefix) && host.count > entry.prefix.count {
            return (entry.server, nil)
        }
        for entry in regexes {
            if let match = entry.regex.firstMatch(in: host) { return (entry.server, match) }
        }
        return (defaultServer, nil)
    }

    /// nginx's host validation (`ngx_http_validate_host`): lowercased, port and a trailing dot removed;
    /// nil for a host nginx rejects with 400 (`..`, `/`, `\`, control bytes, an unclosed `[`).
    public static func normalizeHost(_ raw: String) -> String? {
        var contiguous = raw  // `withUTF8` needs a var; a native string is not copied
        return contiguous.withUTF8 { bytes -> String? in
            var dotPosition = -1
            var hostEnd: Int?
            var inBrackets = false
            var hasUppercase = false
            for i in 0..<bytes.count {
                let b = bytes[i]
                switch b {
                case UInt8(ascii: "."):
                    if dotPosition == i - 1 { return nil }
                    dotPosition = i
                case UInt8(ascii: ":"):
                    if !inBrackets { hostEnd = i }
                case UInt8(ascii: "["):
                    if i == 0 { inBrackets = true }
                case UInt8(ascii: "]"):
                    inBrackets = false
                case UInt8(ascii: "/"), UInt8(ascii: "\\"), 0:
                    return nil
                case UInt8(ascii: "A")...UInt8(ascii: "Z"):
                    hasUppercase = true
                default:
                    if b < 0x20 || b == 0x7f { return nil }
                }
                if hostEnd != nil { break }
            }
            if inBrackets { return nil }
            // The host is the bytes before the port, lowercased, without a trailing dot.
            var length = hostEnd ?? bytes.count
            if length > 0, bytes[length - 1] == UInt8(ascii: ".") { length -= 1 }
            if length == 0 && !bytes.isEmpty && hostEnd != 0 { return nil }
            // The usual host is already in its normal form: no new string.
            if length == bytes.count && !hasUppercase { return raw }
            return String(unsafeUninitializedCapacity: length) { out in
                for i in 0..<length {
                    let b = bytes[i]
                    out[i] = b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b + 32 : b
                }
                return length
            }
        }
    }
}
