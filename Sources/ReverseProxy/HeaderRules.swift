import HTTPFront
import NIOHTTP1

/// nginx's header handling between client and upstream, as pure functions.
public enum HeaderRules {
    /// Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded, in either direction.
    public static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// What nginx hides from upstream responses unless `proxy_pass_header` lets them through.
    public static let hiddenByDefault: Set<String> = [
        "date", "server", "x-pad", "x-accel-expires", "x-accel-redirect", "x-accel-limit-rate",
        "x-accel-buffering", "x-accel-charset",
    ]

    /// `proxy_set_header` defaults (`ngx_http_proxy_headers`). Content-Length and
    /// Transfer-Encoding are set from the body framing, so they appear here as empty.
    public static let defaultSetHeaders: [(String, String)] = [
        ("Host", "$proxy_host"), ("Connection", "close"), ("Content-Length", ""), ("Transfer-Encoding", ""),
        ("TE", ""), ("Keep-Alive", ""), ("Expect", ""), ("Upgrade", ""),
    ]

    /// Headers named in a `Connection` header are hop-by-hop for that message.
    static func connectionTokens(_ headers: HTTPHeaders) -> Set<String> {
        var tokens: Set<String> = []
        for value in headers["connection"] {
            for token in value.split(separator: ",") {
                tokens.insert(token.trimmed(" \t").lowercased())
            }
        }
        return tokens
    }

    /// How the request body goes upstream.
    public enum BodyFraming: Sendable, Equatable {
        case none
        case length(Int)
        case chunked
    }

    /// The headers of the upstream request: the merged `proxy_set_header` list (user's first,
    /// then nginx's defaults not overridden; empty values dropped), then the client's headers
    /// whose names are not in that list and are not hop-by-hop.
    public static func upstreamRequestHeaders(setHeaders: [(name: String, value: String)], client: HTTPHeaders,
                                              passClientHeaders: Bool, framing: BodyFraming) -> HTTPHeaders {
        var out = HTTPHeaders()
        var named: Set<String> = []
        for (name, value) in setHeaders {
            let lower = name.lowercased()
            named.insert(lower)
            if lower == "content-length" || lower == "transfer-encoding" { continue }
            if !value.isEmpty { out.add(name: name, value: value) }
        }
        switch framing {
        case .none: break
        case .length(let length): out.add(name: "Content-Length", value: String(length))
        case .chunked: out.add(name: "Transfer-Encoding", value: "chunked")
        }
        guard passClientHeaders else { return out }
        let dropped = connectionTokens(client)
        for (name, value) in client {
            let lower = name.lowercased()
            if named.contains(lower) || hopByHop.contains(lower) || dropped.contains(lower)
                || lower == "content-length" {
                continue
            }
            out.add(name: name, value: value)
        }
        return out
    }

    /// The upstream response's headers as the client gets them: hop-by-hop and hidden ones removed
    /// (`Upgrade`/`Connection` kept on a 101), `Location`/`Refresh` rewritten by `proxy_redirect`.
    public static func clientResponseHeaders(upstream: HTTPHeaders, status: Int, hidden: Set<String>,
                                             redirects: [ProxyRedirectRule]) -> HTTPHeaders {
        var out = HTTPHeaders()
        let dropped = connectionTokens(upstream)
        for (name, value) in upstream {
            let lower = name.lowercased()
            if status == 101, lower == "upgrade" || lower == "connection" {
                out.add(name: name, value: value)
                continue
            }
            if hopByHop.contains(lower) || dropped.contains(lower) || hidden.contains(lower) { continue }
            if lower == "location" || lower == "refresh" {
                out.add(name: name, value: ProxyRedirectRule.rewrite(value, header: lower, rules: redirects))
                continue
            }
            out.add(name: name, value: value)
        }
        return out
    }
}

/// One `proxy_redirect FROM TO;` pair (plain text prefix form; `default` is expanded at config load).
public struct ProxyRedirectRule: Sendable, Equatable {
    public var from: String
    public var to: String

    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }

    /// The first rule whose `from` prefixes the value replaces that prefix (for `Refresh`, the `url=` part).
    static func rewrite(_ value: String, header: String, rules: [ProxyRedirectRule]) -> String {
        if header == "refresh" {
            guard let range = value.firstRange(ofText: "url=") else { return value }
            let url = String(value[range.upperBound...])
            return String(value[..<range.upperBound]) + rewrite(url, header: "location", rules: rules)
        }
        for rule in rules where value.hasPrefix(rule.from) {
            return rule.to + value.dropFirst(rule.from.count)
        }
        return value
    }
}

extension String {
    fileprivate func firstRange(ofText needle: String) -> Range<String.Index>? {
        var start = startIndex
        while start < endIndex {
            if self[start...].hasPrefix(needle) { return start..<index(start, offsetBy: needle.count) }
            start = index(after: start)
        }
        return nil
    }
}

extension Substring {
    func trimmed(_ characters: String) -> String {
        var text = self
        while let first = text.first, characters.contains(first) { text = text.dropFirst() }
        while let last = text.last, characters.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
