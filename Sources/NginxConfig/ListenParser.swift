#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `listen` as nginx's `ngx_http_core_listen` and `ngx_parse_url` read it.
enum ListenParser {
    /// Parameters Gantry keeps for the front (nginx's socket options).
    static let keptParameters: Set<String> = ["backlog", "rcvbuf", "sndbuf", "reuseport", "ipv6only", "so_keepalive", "deferred", "bind", "fastopen", "accept_filter", "setfib", "ssl"]
    /// Parameters nginx has and Gantry refuses.
    static let refusedParameters: Set<String> = ["http2", "quic", "proxy_protocol"]

    static func parse(_ directive: Directive) throws(ConfigError) -> [ListenAddress] {
        let here = directive.location
        let url = directive.values[0]
        let hosts: [String?]
        let endpointPort: Int
        if url.hasPrefix("unix:") {
            let path = String(url.dropFirst(5))
            guard !path.isEmpty else {
                throw ConfigError("no path in the unix domain socket in \"\(url)\" of the \"listen\" directive", at: here)
            }
            return [try finish(directive, endpoint: .unix(path: path))]
        }
        (hosts, endpointPort) = try parseInet(url, at: here)
        var result: [ListenAddress] = []
        for host in hosts {
            result.append(try finish(directive, endpoint: .tcp(host: host, port: endpointPort)))
        }
        return result
    }

    private static func finish(_ directive: Directive, endpoint: ListenAddress.Endpoint) throws(ConfigError) -> ListenAddress {
        var isDefault = false
        var parameters: [String] = []
        for parameter in directive.values.dropFirst() {
            let key = parameter.split(separator: "=", maxSplits: 1).first.map(String.init) ?? parameter
            if parameter == "default_server" || parameter == "default" {
                isDefault = true
            } else if refusedParameters.contains(key) {
                throw ConfigError("the \"\(key)\" parameter of the \"listen\" directive is not supported by gantry", at: directive.location)
            } else if keptParameters.contains(key) {
                try checkParameter(parameter, key: key, at: directive.location)
                parameters.append(parameter)
            } else {
                throw ConfigError("invalid parameter \"\(parameter)\"", at: directive.location)
            }
        }
        return ListenAddress(endpoint: endpoint, isDefaultServer: isDefault, parameters: parameters, location: directive.location)
    }

    private static func checkParameter(_ parameter: String, key: String, at here: SourceLocation) throws(ConfigError) {
        let value = parameter.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init)
        switch key {
        case "backlog", "fastopen":
            guard let value, Int(value) != nil else { throw ConfigError("invalid \(key) \"\(value ?? "")\"", at: here) }
        case "rcvbuf", "sndbuf":
            guard let value, ConfigValues.parseSize(value, allowGiga: false) != nil else {
                throw ConfigError("invalid \(key) \"\(value ?? "")\"", at: here)
            }
        case "ipv6only":
            guard value == "on" || value == "off" else {
                throw ConfigError("invalid ipv6only flags \"\(value ?? "")\"", at: here)
            }
        default:
            break
        }
    }

    /// `addr:port`, `[v6]:port`, `*:port`, `port`, `addr` (port 80). Host names go through /etc/hosts only.
    static func parseInet(_ url: String, at here: SourceLocation) throws(ConfigError) -> (hosts: [String?], port: Int) {
        func invalidPort() -> ConfigError { ConfigError("invalid port in \"\(url)\" of the \"listen\" directive", at: here) }
        func port(_ text: Substring) throws(ConfigError) -> Int {
            guard let value = ConfigValues.parseNumber(String(text)), value >= 1, value <= 65535 else { throw invalidPort() }
            return value
        }
        if url.hasPrefix("[") {
            guard let close = url.firstIndex(of: "]") else {
                throw ConfigError("invalid host in \"\(url)\" of the \"listen\" directive", at: here)
            }
            let host = String(url[url.index(after: url.startIndex)..<close])
            guard IPAddressText.isIPv6(host) else {
                throw ConfigError("invalid host in \"\(url)\" of the \"listen\" directive", at: here)
            }
            let rest = url[url.index(after: close)...]
            let number: Int
            if rest.isEmpty {
                number = 80
            } else {
                guard rest.hasPrefix(":") else { throw invalidPort() }
                number = try port(rest.dropFirst())
            }
            return ([host == "::" ? "::" : host], number)
        }
        if url.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return ([nil], try port(Substring(url)))
        }
        var hostText = Substring(url)
        var number = 80
        if let colon = url.lastIndex(of: ":") {
            hostText = url[..<colon]
            number = try port(url[url.index(after: colon)...])
        }
        // `*:80`, `0.0.0.0:80` and `80` are one address to nginx: all IPv4 addresses.
        if hostText == "*" || hostText == "0.0.0.0" { return ([nil], number) }
        let host = String(hostText)
        if IPAddressText.isIPv4(host) { return ([host], number) }
        let resolved = HostsFile.addresses(of: host)
        guard !resolved.isEmpty else {
            throw ConfigError("host not found in \"\(url)\" of the \"listen\" directive", at: here)
        }
        return (resolved.map { Optional($0) }, number)
    }

    /// `a duplicate default server for ADDR` when two servers claim `default_server` on one address.
    static func checkDefaultServers(_ servers: [ServerBlock]) throws(ConfigError) {
        var defaults: Set<ListenAddress.Endpoint> = []
        for server in servers {
            for listen in server.listens where listen.isDefaultServer {
                if defaults.contains(listen.endpoint) {
                    throw ConfigError("a duplicate default server for \(listen.endpoint)", at: listen.location)
                }
                defaults.insert(listen.endpoint)
            }
        }
    }
}

extension ListenAddress.Endpoint: CustomStringConvertible {
    /// nginx's spelling of an address in messages: `0.0.0.0:80`, `[::]:80`, `unix:/path`.
    public var description: String {
        switch self {
        case .tcp(let host, let port):
            guard let host else { return "0.0.0.0:\(port)" }
            return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path):
            return "unix:\(path)"
        }
    }
}

/// Literal address checks, without Foundation.
enum IPAddressText {
    static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy { $0.isASCII && $0.isNumber } && Int(part)! <= 255
        }
    }

    static func isIPv6(_ text: String) -> Bool {
        guard !text.isEmpty, text.contains(":") else { return false }
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }
}

/// Name lookup for `listen`, from /etc/hosts only: config loading never waits on DNS.
enum HostsFile {
    static func addresses(of name: String, path: String = "/etc/hosts") -> [String] {
        let wanted = name.lowercased()
        var found: [String] = []
        if wanted == "localhost" { found.append("127.0.0.1") }
        guard let text = try? ConfigParser.read(path, from: nil) else { return found }
        for line in text.split(separator: "\n") {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2 else { continue }
            let address = String(fields[0])
            if fields.dropFirst().contains(where: { $0.lowercased() == wanted }), !found.contains(address),
               IPAddressText.isIPv4(address) || IPAddressText.isIPv6(address) {
                found.append(address)
            }
        }
        return found
    }
}
