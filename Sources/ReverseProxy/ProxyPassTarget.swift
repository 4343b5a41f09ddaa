import NginxConfig

/// Where a `proxy_pass` sends requests, parsed from its URL.
public struct ProxyPassTarget: Sendable, Equatable {
    public enum Endpoint: Sendable, Equatable {
        /// `http://HOST[:PORT]`: an upstream group when HOST names one, else an address.
        case host(String, port: Int?)
        /// `http://unix:/path.sock:`
        case unix(path: String)
    }

    public var endpoint: Endpoint
    /// The URI part after the authority (`/app/` in `http://h/app/`), nil when none is written.
    public var uri: String?
    /// `$proxy_host`: `HOST[:PORT]` as written (port omitted when 80), `localhost` for a Unix socket.
    public var proxyHost: String
    /// The URL as written up to and including the authority, for `proxy_redirect default`.
    public var url: String

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Parses `http://…` as nginx's `ngx_parse_url` does for `proxy_pass`.
    public static func parse(_ text: String) throws(ParseError) -> ProxyPassTarget {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            rest = text.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            throw ParseError(description: "https upstreams (\"\(text)\") are not supported by gantry")
        } else {
            throw ParseError(description: "invalid URL prefix in \"\(text)\"")
        }
        if rest.lowercased().hasPrefix("unix:") {
            // http://unix:/path/to.sock:/uri — the path ends at the next ':'.
            let afterUnix = rest.dropFirst(5)
            let path: Substring
            var uri: String?
            if let colon = afterUnix.firstIndex(of: ":") {
                path = afterUnix[..<colon]
                let tail = afterUnix[afterUnix.index(after: colon)...]
                uri = tail.isEmpty ? nil : String(tail)
            } else {
                path = afterUnix
            }
            guard path.hasPrefix("/") || !path.isEmpty else {
                throw ParseError(description: "no path in the unix domain socket in \"\(text)\"")
            }
            if path.isEmpty { throw ParseError(description: "no path in the unix domain socket in \"\(text)\"") }
            let url = "http://unix:" + path + ":"
            return ProxyPassTarget(endpoint: .unix(path: String(path)), uri: uri, proxyHost: "localhost", url: url)
        }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let uri: String? = authorityEnd == rest.endIndex ? nil : String(rest[authorityEnd...])
        guard !authority.isEmpty else { throw ParseError(description: "no host in \"\(text)\"") }
        var host = Substring(authority)
        var port: Int?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw ParseError(description: "invalid IPv6 address in \"\(text)\"") }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()), (1...65535).contains(value) else {
                    throw ParseError(description: "invalid port in \"\(text)\"")
                }
                port = value
            }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]), (1...65535).contains(value) else {
                throw ParseError(description: "invalid port in \"\(text)\"")
            }
            port = value
            host = host[..<colon]
        }
        let proxyHost = String(authority).hasSuffix(":80") ? String(authority.dropLast(3)) : String(authority)
        return ProxyPassTarget(endpoint: .host(String(host), port: port), uri: uri, proxyHost: proxyHost,
                               url: "http://" + authority)
    }
}

/// nginx's rules for the URI sent upstream.
public enum UpstreamURI {
    /// - Without a URI part in `proxy_pass`: the request target as the client sent it.
    /// - With one, in a prefix location: the matched location prefix of the normalised
    ///   URI is replaced by it, the rest escaped again, and the query appended.
    public static func make(targetURI: String?, locationPrefix: String?, requestTarget: String,
                            normalizedURI: String, args: String) -> String {
        guard let targetURI else { return requestTarget }
        let prefix = locationPrefix ?? ""
        var rest = Substring(normalizedURI)
        if rest.hasPrefix(prefix) { rest = rest.dropFirst(prefix.count) }
        var result = targetURI + escape(rest)
        if !args.isEmpty { result += "?" + args }
        return result
    }

    /// Percent-escapes what nginx's `NGX_ESCAPE_URI` escapes: controls, space, `#`, `%`, `?`, non-ASCII.
    public static func escape(_ text: Substring) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        for byte in text.utf8 {
            if byte <= 0x20 || byte >= 0x7F || byte == UInt8(ascii: "#") || byte == UInt8(ascii: "%")
                || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "\"") {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0xF)])
            } else {
                bytes.append(byte)
            }
        }
        out = String(decoding: bytes, as: UTF8.self)
        return out
    }
}
