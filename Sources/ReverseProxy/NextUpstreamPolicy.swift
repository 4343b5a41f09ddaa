import NginxConfig

/// `proxy_next_upstream`: which failures send a request on to the next server.
public struct NextUpstreamPolicy: Sendable, Equatable {
    public enum Condition: String, Sendable, Hashable, CaseIterable {
        case error, timeout
        case invalidHeader = "invalid_header"
        case http500 = "http_500", http502 = "http_502", http503 = "http_503", http504 = "http_504"
        case http403 = "http_403", http404 = "http_404", http429 = "http_429"
        case nonIdempotent = "non_idempotent"
    }

    public var conditions: Set<Condition>

    /// nginx's default: `error timeout`.
    public static let `default` = NextUpstreamPolicy(conditions: [.error, .timeout])

    public init(conditions: Set<Condition>) { self.conditions = conditions }

    public static func parse(_ directive: Directive) throws(ConfigError) -> NextUpstreamPolicy {
        var conditions: Set<Condition> = []
        for value in directive.values {
            if value == "off" {
                guard directive.arguments.count == 1 else {
                    throw ConfigError("invalid value \"off\" in \"\(directive.name)\" directive", at: directive.location)
                }
                return NextUpstreamPolicy(conditions: [])
            }
            if value == "updating" { continue }  // Only meaningful with a cache.
            guard let condition = Condition(rawValue: value) else {
                throw ConfigError("invalid value \"\(value)\" in \"\(directive.name)\" directive", at: directive.location)
            }
            conditions.insert(condition)
        }
        return NextUpstreamPolicy(conditions: conditions)
    }

    /// The condition a response status triggers, if any.
    public static func condition(forStatus status: Int) -> Condition? {
        switch status {
        case 500: return .http500
        case 502: return .http502
        case 503: return .http503
        case 504: return .http504
        case 403: return .http403
        case 404: return .http404
        case 429: return .http429
        default: return nil
        }
    }

    /// Whether a failure of kind `condition` lets the request go to another server.
    /// Once the request was sent, POST, LOCK, PATCH are not retried unless `non_idempotent`
    /// (nginx 1.9.13+); a connect failure retries them, as nothing reached the server.
    public func allowsRetry(_ condition: Condition, method: String, requestSent: Bool) -> Bool {
        guard conditions.contains(condition) else { return false }
        if requestSent, ["POST", "LOCK", "PATCH"].contains(method.uppercased()), !conditions.contains(.nonIdempotent) {
            return false
        }
        return true
    }

    /// nginx counts these toward `max_fails` (http_403/404 never do).
    public static func countsAsFailure(_ condition: Condition) -> Bool {
        switch condition {
        case .http403, .http404, .nonIdempotent: return false
        default: return true
        }
    }
}
