/// One level of the configuration tree (main, http, server, location, …)
/// with nginx's inheritance: a value set at an outer level reaches every
/// inner level unless the inner level sets it again.
public final class ConfigScope: Sendable {
    public enum Kind: String, Sendable, Hashable {
        case main, events, http, server, location, upstream, appPool = "app_pool"
        case types, limitExcept = "limit_except", ifBlock = "if", map
    }

    public let kind: Kind
    /// This level's own simple directives (those ending in `;`), in config order.
    public let directives: [Directive]
    public let parent: ConfigScope?

    public init(kind: Kind, directives: [Directive], parent: ConfigScope?) {
        self.kind = kind
        self.directives = directives
        self.parent = parent
    }

    /// The directive set at this level only.
    public func own(_ name: String) -> Directive? {
        directives.last { $0.name == name }
    }

    /// The nearest level's value: for single-valued directives such as `root`, `sendfile`, `keepalive_timeout`.
    public func effective(_ name: String) -> Directive? {
        var scope: ConfigScope? = self
        while let current = scope {
            if let found = current.own(name) { return found }
            scope = current.parent
        }
        return nil
    }

    /// Array directives (`add_header`, `proxy_set_header`, `error_page`, …): all of the
    /// nearest level that has any. As in nginx, a level that sets one drops every inherited one.
    public func effectiveList(_ name: String) -> [Directive] {
        var scope: ConfigScope? = self
        while let current = scope {
            let here = current.directives.filter { $0.name == name }
            if !here.isEmpty { return here }
            scope = current.parent
        }
        return []
    }

    /// Like `effectiveList`, treating several directive names as one group, e.g. `access_log`.
    public func effectiveList(anyOf names: Set<String>) -> [Directive] {
        var scope: ConfigScope? = self
        while let current = scope {
            let here = current.directives.filter { names.contains($0.name) }
            if !here.isEmpty { return here }
            scope = current.parent
        }
        return []
    }
}
