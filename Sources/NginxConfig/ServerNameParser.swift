/// `server_name` values, checked as nginx's `ngx_http_core_server_name` does.
enum ServerNameParser {
    static func parse(_ text: String, at here: SourceLocation) throws(ConfigError) -> ServerName {
        if text.hasPrefix("~") {
            let pattern = String(text.dropFirst())
            guard !pattern.isEmpty else {
                throw ConfigError("empty regex in server name \"\(text)\"", at: here)
            }
            try RegexCheck.compile(pattern, at: here)
            return .regex(pattern)
        }
        let name = text.lowercased()
        let stars = name.filter { $0 == "*" }.count
        if name.hasPrefix("*.") && stars == 1 && name.count > 2 {
            return .leadingWildcard(String(name.dropFirst()))
        }
        if name.hasPrefix(".") && stars == 0 && name.count > 1 {
            return .leadingWildcard(name)
        }
        if name.hasSuffix(".*") && stars == 1 && name.count > 2 {
            return .trailingWildcard(String(name.dropLast()))
        }
        if stars > 0 {
            throw ConfigError("invalid server name or wildcard \"\(text)\"", at: here)
        }
        return .exact(name)
    }
}
