/// The load-time checks of nginx's `ngx_http_proxy_pass` that need the whole `http` block (the
/// names of upstreams and app pools). The rest of `proxy_pass` (URI rules, variables) is compiled
/// by the ReverseProxy module, which `gantry -t` runs too.
///
/// Host names are not resolved at load time: the proxy resolves them when it connects, so a name
/// that does not resolve yet is not an error (nginx: `host not found in upstream`).
enum ProxyPassCheck {
    static func check(_ locations: [LocationBlock], groups: Set<String>) throws(ConfigError) {
        for location in locations {
            if let proxyPass = location.scope.own("proxy_pass") {
                try check(proxyPass, groups: groups)
            }
            try check(location.nested, groups: groups)
        }
    }

    static func check(_ directive: Directive, groups: Set<String>) throws(ConfigError) {
        let here = directive.location
        let url = directive.values[0]
        if url.contains("$") { return }  // resolved per request, as in nginx
        let lower = url.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") {
            rest = url.dropFirst(7)
        } else if lower.hasPrefix("https://") {
            throw ConfigError("\"proxy_pass\" to https:// is not supported by gantry", at: here)
        } else {
            throw ConfigError("invalid URL prefix", at: here)
        }
        var authority = rest
        if rest.lowercased().hasPrefix("unix:") {
            // http://unix:/path.sock:/uri — the path ends at the next ':'.
            let afterScheme = rest.dropFirst(5)
            if let colon = afterScheme.firstIndex(of: ":") {
                authority = rest[..<colon]
            }
            if authority.count == 5 {
                throw ConfigError("no path in the unix domain socket in upstream \"\(authority)\"", at: here)
            }
        } else if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
        }
        if authority.lowercased().hasPrefix("unix:") { return }
        let (host, port) = try splitHostPort(String(authority)) {
            ConfigError("\($0) in upstream \"\(authority)\"", at: here)
        }
        if let port, groups.contains(host.lowercased()) {
            throw ConfigError("upstream \"\(host)\" may not have port \(port)", at: here)
        }
    }

    /// Splits `host:port`, `[v6]:port` or `host`; errors worded as `ngx_parse_url`'s.
    static func splitHostPort(_ url: String, error: (String) -> ConfigError) throws(ConfigError) -> (host: String, port: Int?) {
        var host = Substring(url)
        var portText: Substring?
        if url.hasPrefix("[") {
            guard let close = url.firstIndex(of: "]") else { throw error("invalid host") }
            host = url[url.index(after: url.startIndex)..<close]
            let after = url[url.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty { throw error("invalid host") }
        } else if let colon = url.lastIndex(of: ":") {
            host = url[..<colon]
            portText = url[url.index(after: colon)...]
        }
        guard !host.isEmpty else { throw error("no host") }
        guard let portText else { return (String(host), nil) }
        guard let port = ConfigValues.parseNumber(String(portText)), port >= 1, port <= 65535 else { throw error("invalid port") }
        return (String(host), port)
    }
}
