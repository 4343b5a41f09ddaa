/// The condition of an `if (…)` block, as nginx's rewrite module reads it
/// (`ngx_http_rewrite_if_condition`): a variable alone (false when empty or "0"), a string
/// comparison, or a regex match. File tests (`-f`, `-d`, `-e`, `-x`) are refused: they would
/// stat the disk on the event loop, and `try_files` does their job.
public enum IfCondition: Sendable, Equatable {
    /// `($variable)`
    case variable(String)
    /// `($variable = value)` / `($variable != value)`; both sides may hold variables.
    case equals(String, String, negated: Bool)
    /// `($variable ~ regex)`, `~*` (case-insensitive), `!~`, `!~*`
    case matches(String, pattern: String, caseInsensitive: Bool, negated: Bool)

    static let fileTests: Set<String> = ["-f", "!-f", "-d", "!-d", "-e", "!-e", "-x", "!-x"]

    public static func parse(_ directive: Directive) throws(ConfigError) -> IfCondition {
        let here = directive.location
        var tokens = directive.values
        let written = tokens.joined(separator: " ")
        // nginx: the first argument starts with "(" and the last ends with ")", either of
        // them possibly a token of its own.
        guard let first = tokens.first, first.hasPrefix("("), let last = tokens.last, last.hasSuffix(")") else {
            throw ConfigError("invalid condition \"\(written)\"", at: here)
        }
        if first == "(" { tokens.removeFirst() } else { tokens[0] = String(first.dropFirst()) }
        guard !tokens.isEmpty else { throw ConfigError("invalid condition \"\(written)\"", at: here) }
        let lastIndex = tokens.count - 1
        if tokens[lastIndex] == ")" { tokens.removeLast() } else { tokens[lastIndex] = String(tokens[lastIndex].dropLast()) }
        guard let subject = tokens.first else { throw ConfigError("invalid condition \"\(written)\"", at: here) }
        if fileTests.contains(subject) {
            throw ConfigError("the \"\(subject)\" condition of \"if\" is not supported by gantry (use \"try_files\")", at: here)
        }
        guard subject.hasPrefix("$"), subject.count > 1 else {
            throw ConfigError("invalid condition \"\(subject)\"", at: here)
        }
        switch tokens.count {
        case 1:
            return .variable(subject)
        case 3:
            let value = tokens[2]
            switch tokens[1] {
            case "=": return .equals(subject, value, negated: false)
            case "!=": return .equals(subject, value, negated: true)
            case "~", "~*", "!~", "!~*":
                let op = tokens[1]
                try RegexCheck.compile(value, at: here)
                return .matches(subject, pattern: value, caseInsensitive: op.hasSuffix("*"), negated: op.hasPrefix("!"))
            default:
                throw ConfigError("unexpected \"\(tokens[1])\" in condition", at: here)
            }
        default:
            throw ConfigError("invalid condition \"\(written)\"", at: here)
        }
    }
}
