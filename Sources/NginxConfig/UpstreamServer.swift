#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One `server` line of an `upstream` block, checked as nginx's `ngx_http_upstream_server` does.
public struct UpstreamServer: Sendable, Hashable {
    public enum Address: Sendable, Hashable, CustomStringConvertible {
        /// An IP address (IPv6 without brackets) and port.
        case tcp(host: String, port: Int)
        case unix(path: String)

        public var description: String {
            switch self {
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unix(let path): "unix:\(path)"
            }
        }
    }

    /// The address as written (`app1:8000`, `unix:/run/app.sock`).
    public var name: String
    /// What `name` resolved to at load time; nginx makes one peer of each (so `localhost` may be two).
    public var addresses: [Address]
    public var weight: Int
    public var maxFails: Int
    /// `fail_timeout`, in milliseconds (nginx's default 10s).
    public var failTimeout: Int
    /// `max_conns`; 0 means no limit.
    public var maxConns: Int
    public var isBackup: Bool
    public var isDown: Bool
    public var location: SourceLocation

    public init(name: String, addresses: [Address], weight: Int = 1, maxFails: Int = 1, failTimeout: Int = 10_000,
                maxConns: Int = 0, isBackup: Bool = false, isDown: Bool = false, location: SourceLocation) {
        self.name = name
        self.addresses = addresses
        self.weight = weight
        self.maxFails = maxFails
        self.failTimeout = failTimeout
        self.maxConns = maxConns
        self.isBackup = isBackup
        self.isDown = isDown
        self.location = location
    }

    /// Parses `server ADDRESS [weight=N] [max_fails=N] [fail_timeout=T] [max_conns=N] [backup] [down]`.
    /// `supportsBackup` is false once `ip_hash`, `hash` or `random` came earlier in the block, as in nginx.
    static func parse(_ directive: Directive, supportsBackup: Bool) throws(ConfigError) -> UpstreamServer {
        let here = directive.location
        let name = directive.values[0]
        var server = UpstreamServer(name: name, addresses: [], location: here)
        for parameter in directive.values.dropFirst() {
            func invalid() -> ConfigError { ConfigError("invalid parameter \"\(parameter)\"", at: here) }
            let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let value = parts.count == 2 ? parts[1] : nil
            switch (parts[0], value) {
            case ("weight", let value?):
                guard let n = ConfigValues.parseNumber(value), n > 0 else { throw invalid() }
                server.weight = n
            case ("max_fails", let value?):
                guard let n = ConfigValues.parseNumber(value) else { throw invalid() }
                server.maxFails = n
            case ("max_conns", let value?):
                guard let n = ConfigValues.parseNumber(value) else { throw invalid() }
                server.maxConns = n
            case ("fail_timeout", let value?):
                guard let seconds = ConfigValues.parseTime(value, unit: .seconds) else { throw invalid() }
                server.failTimeout = seconds * 1000
            case ("backup", nil):
                guard supportsBackup else {
                    throw ConfigError("balancing method does not support parameter \"backup\"", at: here)
                }
                server.isBackup = true
            case ("down", nil):
                server.isDown = true
            case ("resolve", nil), ("service", _), ("route", _), ("slow_start", _), ("drain", nil):
                throw ConfigError("the \"\(parts[0])\" parameter of the \"server\" directive is not supported by gantry", at: here)
            default:
                throw invalid()
            }
        }
        server.addresses = try resolve(name, at: here)
        return server
    }

    /// nginx's `ngx_parse_url` for upstream servers: default port 80, names resolved now.
    static func resolve(_ url: String, at here: SourceLocation) throws(ConfigError) -> [Address] {
        if url.hasPrefix("unix:") {
            let path = String(url.dropFirst(5))
            guard !path.isEmpty else {
                throw ConfigError("no path in the unix domain socket in upstream \"\(url)\"", at: here)
            }
            return [.unix(path: path)]
        }
        let (host, port) = try splitHostPort(url) { ConfigError("\($0) in upstream \"\(url)\"", at: here) }
        let addresses = HostResolver.addresses(of: host)
        guard !addresses.isEmpty else {
            throw ConfigError("host not found in upstream \"\(url)\"", at: here)
        }
        return addresses.map { .tcp(host: $0, port: port) }
    }

    /// Splits `host:port`, `[v6]:port`, `host` (port 80); errors worded as `ngx_parse_url`'s.
    static func splitHostPort(_ url: String, error: (String) -> ConfigError) throws(ConfigError) -> (host: String, port: Int) {
        var rest = Substring(url)
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw error("invalid host") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { throw error("invalid host") }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw error("no host") }
        var port = 80
        if let portText {
            guard let n = ConfigValues.parseNumber(String(portText)), n >= 1, n <= 65535 else { throw error("invalid port") }
            port = n
        }
        return (String(host), port)
    }
}

/// Resolves a host name as nginx does at load time (`getaddrinfo`), for upstream servers and `proxy_pass`.
enum HostResolver {
    static func addresses(of host: String) -> [String] {
        if IPAddressText.isIPv4(host) || IPAddressText.isIPv6(host) { return [host] }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var result: [String] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(current.pointee.ai_addr, current.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !result.contains(text) { result.append(text) }
            }
            node = current.pointee.ai_next
        }
        return result
    }
}
