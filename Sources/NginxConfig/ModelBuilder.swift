#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds the typed model from a validated directive tree, with the checks nginx makes once a
/// block is complete (`duplicate location`, `a duplicate default server`, conflicting server names,
/// a `proxy_pass` naming an upstream with a port). Directive-level checks are the validator's.
struct ModelBuilder {
    private(set) var warnings: [ConfigWarning] = []

    /// Blocks kept in their level's scope: `types` (values, so inheritance applies to them) and
    /// `if` (run in config order with the level's `return`s).
    static let valueBlocks: Set<String> = ["types", "if"]

    static func ownDirectives(_ level: [Directive]) -> [Directive] {
        level.filter { $0.block == nil || valueBlocks.contains($0.name) }
    }

    mutating func build(_ tree: [Directive]) throws(ConfigError) -> Configuration {
        let main = ConfigScope(kind: .main, directives: Self.ownDirectives(tree), parent: nil)
        if tree.named("events").isEmpty {
            throw ConfigError("no \"events\" section in configuration", at: nil)
        }
        var http: HTTPBlock?
        if let httpDirective = tree.named("http").first {
            http = try buildHTTP(httpDirective, parent: main)
        }
        return Configuration(main: main, directives: tree, http: http)
    }

    private mutating func buildHTTP(_ directive: Directive, parent: ConfigScope) throws(ConfigError) -> HTTPBlock {
        let children = directive.block ?? []
        let scope = ConfigScope(kind: .http, directives: Self.ownDirectives(children), parent: parent)
        var upstreams: [UpstreamBlock] = []
        var appPools: [AppPoolBlock] = []
        // Names are unique and each app_pool has `wsgi`: the validator checked both.
        for child in children where child.name == "upstream" || child.name == "app_pool" {
            let name = child.values[0]
            let groupScope = ConfigScope(kind: child.name == "upstream" ? .upstream : .appPool,
                                         directives: Self.ownDirectives(child.block ?? []), parent: scope)
            if child.name == "upstream" {
                upstreams.append(UpstreamBlock(name: name, scope: groupScope, location: child.location))
            } else {
                appPools.append(AppPoolBlock(name: name, scope: groupScope, location: child.location))
            }
        }
        var servers: [ServerBlock] = []
        for child in children where child.name == "server" {
            servers.append(try buildServer(child, parent: scope))
        }
        let groups = Set((upstreams.map(\.name) + appPools.map(\.name)).map { $0.lowercased() })
        for server in servers {
            try ProxyPassCheck.check(server.locations, groups: groups)
        }
        try ListenParser.checkDefaultServers(servers)
        warnings += Self.conflictingServerNames(servers)
        return HTTPBlock(scope: scope, servers: servers, upstreams: upstreams, appPools: appPools)
    }

    /// nginx's `conflicting server name "a" on 0.0.0.0:80, ignored`: a later server claiming a name
    /// an earlier one has on the same address never sees a request for it. A server without
    /// `server_name` has the name "" as in nginx.
    static func conflictingServerNames(_ servers: [ServerBlock]) -> [ConfigWarning] {
        var claimed: Set<String> = []
        var warnings: [ConfigWarning] = []
        for server in servers {
            let names = server.names.isEmpty ? [ServerName.exact("")] : server.names
            for endpoint in Set(server.listens.map(\.endpoint)).sorted(by: { $0.description < $1.description }) {
                for name in names {
                    let key = "\(endpoint) \(name.configText)"
                    if !claimed.insert(key).inserted {
                        warnings.append(ConfigWarning("conflicting server name \"\(name.configText)\" on \(endpoint), ignored", at: nil))
                    }
                }
            }
        }
        return warnings
    }

    private mutating func buildServer(_ directive: Directive, parent: ConfigScope) throws(ConfigError) -> ServerBlock {
        let children = directive.block ?? []
        let scope = ConfigScope(kind: .server, directives: Self.ownDirectives(children), parent: parent)
        var listens: [ListenAddress] = []
        for listen in children.named("listen") {
            listens += try ListenParser.parse(listen)
        }
        if listens.isEmpty {
            // nginx's default: *:80 when run as root, else *:8000.
            listens = [ListenAddress(endpoint: .tcp(host: nil, port: geteuid() == 0 ? 80 : 8000), location: directive.location)]
        }
        var names: [ServerName] = []
        for serverName in children.named("server_name") {
            for argument in serverName.values {
                var repeated: [ConfigWarning] = []  // the validator already reported these
                names.append(try ServerNameParser.parse(argument, at: serverName.location, warnings: &repeated))
            }
        }
        let locations = try buildLocations(children, parent: scope, enclosing: nil)
        return ServerBlock(scope: scope, location: directive.location, listens: listens, names: names, locations: locations)
    }

    private mutating func buildLocations(_ level: [Directive], parent: ConfigScope, enclosing: LocationBlock?) throws(ConfigError) -> [LocationBlock] {
        var result: [LocationBlock] = []
        for directive in level where directive.name == "location" {
            let match = try LocationMatch.parse(directive)
            if let enclosing {
                try Self.checkNesting(match, inside: enclosing.match, at: directive.location)
            }
            try Self.checkDuplicate(match, among: result, at: directive.location)
            let children = directive.block ?? []
            let scope = ConfigScope(kind: .location, directives: Self.ownDirectives(children), parent: parent)
            var block = LocationBlock(scope: scope, match: match, location: directive.location, nested: [])
            block.nested = try buildLocations(children, parent: scope, enclosing: block)
            result.append(block)
        }
        return result
    }

    /// nginx's rules in `ngx_http_core_location` for a location inside a location.
    static func checkNesting(_ inner: LocationMatch, inside outer: LocationMatch, at here: SourceLocation) throws(ConfigError) {
        switch outer {
        case .exact(let name):
            throw ConfigError("location \"\(inner.displayName)\" cannot be inside the exact location \"\(name)\"", at: here)
        case .named(let name):
            throw ConfigError("location \"\(inner.displayName)\" cannot be inside the named location \"@\(name)\"", at: here)
        default:
            break
        }
        if case .named(let name) = inner {
            throw ConfigError("named location \"@\(name)\" can be on the server level only", at: here)
        }
        if case .regex = inner { return }
        if !inner.path.hasPrefix(outer.path) {
            throw ConfigError("location \"\(inner.path)\" is outside location \"\(outer.path)\"", at: here)
        }
    }

    /// `duplicate location "/x"`: two exact, or two prefix (`^~` or not), with one name at one level.
    static func checkDuplicate(_ match: LocationMatch, among earlier: [LocationBlock], at here: SourceLocation) throws(ConfigError) {
        for other in earlier {
            switch (match, other.match) {
            case (.exact(let a), .exact(let b)) where a == b:
                throw ConfigError("duplicate location \"\(a)\"", at: here)
            case (.prefix(let a, _), .prefix(let b, _)) where a == b:
                throw ConfigError("duplicate location \"\(a)\"", at: here)
            default:
                continue
            }
        }
    }
}

extension LocationMatch {
    /// nginx's parse of `location [=|~|~*|^~] uri` and `location @name`.
    static func parse(_ directive: Directive) throws(ConfigError) -> LocationMatch {
        let values = directive.values
        if values.count == 2 {
            let name = values[1]
            switch values[0] {
            case "=": return .exact(name)
            case "^~": return .prefix(name, stopsRegexSearch: true)
            case "~": return try regex(name, caseInsensitive: false, at: directive.location)
            case "~*": return try regex(name, caseInsensitive: true, at: directive.location)
            default:
                throw ConfigError("invalid location modifier \"\(values[0])\"", at: directive.location)
            }
        }
        let name = values[0]
        if name.hasPrefix("=") { return .exact(String(name.dropFirst())) }
        if name.hasPrefix("^~") { return .prefix(String(name.dropFirst(2)), stopsRegexSearch: true) }
        if name.hasPrefix("~*") { return try regex(String(name.dropFirst(2)), caseInsensitive: true, at: directive.location) }
        if name.hasPrefix("~") { return try regex(String(name.dropFirst()), caseInsensitive: false, at: directive.location) }
        if name.hasPrefix("@") { return .named(String(name.dropFirst())) }
        return .prefix(name, stopsRegexSearch: false)
    }

    private static func regex(_ pattern: String, caseInsensitive: Bool, at here: SourceLocation) throws(ConfigError) -> LocationMatch {
        try RegexCheck.compile(pattern, at: here)
        return .regex(pattern, caseInsensitive: caseInsensitive)
    }

    /// The text nginx shows for the location in messages.
    var displayName: String {
        switch self {
        case .exact(let s), .prefix(let s, _), .regex(let s, _): s
        case .named(let s): "@" + s
        }
    }

    /// The name nginx compares for nesting (the regex text for regexes, as nginx does).
    var path: String { displayName }
}
