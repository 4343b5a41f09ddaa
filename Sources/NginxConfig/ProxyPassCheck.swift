/// The load-time checks nginx's `ngx_http_proxy_pass` makes, so `gantry -t` refuses what `nginx -t` refuses.
enum ProxyPassCheck {
    static func check(_ locations: [LocationBlock], groups: Set<String>) throws(ConfigError) {
        for location in locations {
            if let proxyPass = location.scope.own("proxy_pass") {
                try check(proxyPass, in: location.match, groups: groups)
            }
            try check(location.nested, groups: groups)
        }
    }

    static func check(_ directive: Directive, in match: LocationMatch, groups: Set<String>) throws(ConfigError) {
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
        var hasURI = false
        if rest.lowercased().hasPrefix("unix:") {
            // http://unix:/path.sock:/uri — the path ends at the next ':'.
            let afterScheme = rest.dropFirst(5)
            if let colon = afterScheme.firstIndex(of: ":") {
                authority = rest[..<colon]
                hasURI = !afterScheme[afterScheme.index(after: colon)...].isEmpty
            }
            if authority.count == 5 {
                throw ConfigError("no path in the unix domain socket in upstream \"\(authority)\"", at: here)
            }
        } else if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            hasURI = true
        }
        if hasURI {
            switch match {
            case .regex, .named:
                throw ConfigError("\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block", at: here)
            default:
                break
            }
        }
        if authority.lowercased().hasPrefix("unix:") { return }
        let (host, port) = try UpstreamServer.splitHostPort(String(authority)) {
            ConfigError("\($0) in upstream \"\(authority)\"", at: here)
        }
        let hasPort = authority.hasSuffix(":\(port)")
        if groups.contains(host.lowercased()) {
            if hasPort {
                throw ConfigError("upstream \"\(host)\" may not have port \(port)", at: here)
            }
            return
        }
        if HostResolver.addresses(of: host).isEmpty {
            throw ConfigError("host not found in upstream \"\(host)\"", at: here)
        }
    }
}
