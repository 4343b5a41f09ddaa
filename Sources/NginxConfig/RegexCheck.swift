/// Compiles a config regex at load time, so a bad one fails `gantry -t` as it fails `nginx -t`.
enum RegexCheck {
    static func compile(_ pattern: String, at here: SourceLocation) throws(ConfigError) {
        do {
            _ = try Regex(pattern)
        } catch {
            throw ConfigError("pcre2_compile() failed: \(error) in \"\(pattern)\"", at: here)
        }
    }
}
