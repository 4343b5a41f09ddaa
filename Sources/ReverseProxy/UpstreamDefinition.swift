import Balancer
import HTTPFront
import NginxConfig

/// An address the proxy connects to.
public enum UpstreamAddress: Sendable, Hashable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)

    public var description: String {
        switch self {
        case .tcp(let host, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

/// Active health checks (nginx Plus's `health_check`, a Gantry addition here):
/// `health_check [uri=/] [interval=5s] [fails=1] [passes=1] [timeout=…];`
public struct HealthCheckSettings: Sendable, Equatable {
    public var uri = "/"
    public var interval: Int64 = 5_000
    public var fails = 1
    public var passes = 1
    /// How long one check may take (default: the interval, at most 5 s… nginx Plus uses proxy timeouts).
    public var timeout: Int64 = 5_000
}

/// One `upstream NAME { … }` block, parsed.
public struct UpstreamDefinition: Sendable {
    public var name: String
    public var servers: [(address: UpstreamAddress, peer: PeerConfiguration)] = []
    public var method: BalancingMethod = .roundRobin
    /// `hash KEY`: the key template.
    public var hashKey: VariableTemplate?
    /// `keepalive N`: idle connections kept per event loop; 0 = no pooling.
    public var keepalive = 0
    public var keepaliveTimeout: Int64 = 60_000
    public var keepaliveRequests = 1000
    public var healthCheck: HealthCheckSettings?
    public var queue: (capacity: Int, timeout: Int64)?
    public var location: SourceLocation?

    public init(name: String) { self.name = name }

    /// The upstream of an `app_pool NAME { }`: its worker sockets as servers, balanced
    /// `least_conn` unless the pool names another method, each worker taking at most
    /// `maxConnsPerServer` requests at once (its threads), and the pool's own balancing
    /// directives (`keepalive*`, `health_check`, `queue`, methods) read from its scope; the
    /// pool's other directives are the supervisor's.
    public static func appPool(name: String, scope: ConfigScope, location: SourceLocation?,
                               sockets: [String], maxConnsPerServer: Int) throws(ConfigError) -> UpstreamDefinition {
        let balancing: Set<String> = ["least_conn", "ip_hash", "hash", "random", "keepalive", "keepalive_timeout",
                                      "keepalive_requests", "keepalive_time", "health_check", "queue"]
        let own = ConfigScope(kind: .upstream, directives: scope.directives.filter { balancing.contains($0.name) }, parent: nil)
        var definition = try parse(name: name, scope: own, location: location, requiresServers: false)
        if !own.directives.contains(where: { ["ip_hash", "hash", "random"].contains($0.name) }) {
            definition.method = .leastConn
        }
        definition.servers = sockets.map { path in
            (.unix(path: path), PeerConfiguration(name: "unix:" + path, maxConns: maxConnsPerServer))
        }
        return definition
    }

    /// Parses an `upstream` block's scope. `requiresServers` false: the servers come later (an app
    /// pool's workers), and directives in `ignoring` belong to the block's owner.
    public static func parse(name: String, scope: ConfigScope, location: SourceLocation?,
                             requiresServers: Bool = true, ignoring: Set<String> = []) throws(ConfigError) -> UpstreamDefinition {
        var definition = UpstreamDefinition(name: name)
        definition.location = location
        for directive in scope.directives where !ignoring.contains(directive.name) {
            switch directive.name {
            case "server": break
            case "least_conn": definition.method = .leastConn
            case "ip_hash": definition.method = .ipHash
            case "hash":
                guard let key = directive.arguments.first else {
                    throw ConfigError("invalid number of arguments in \"hash\" directive", at: directive.location)
                }
                do { definition.hashKey = try VariableTemplate(key.value) } catch {
                    throw ConfigError(error.message, at: directive.location)
                }
                var consistent = false
                if directive.arguments.count > 1 {
                    guard directive.arguments[1].value == "consistent", directive.arguments.count == 2 else {
                        throw ConfigError("invalid parameter \"\(directive.arguments[1].value)\"", at: directive.location)
                    }
                    consistent = true
                }
                definition.method = .hash(consistent: consistent)
            case "random":
                let values = directive.values
                switch values {
                case []: definition.method = .random(two: false)
                case ["two"], ["two", "least_conn"]: definition.method = .random(two: true)
                default: throw ConfigError("invalid parameter \"\(values.last ?? "")\"", at: directive.location)
                }
            case "keepalive":
                definition.keepalive = try DirectiveValues.integer(directive)
                if definition.keepalive == 0 {
                    throw ConfigError("invalid value \"0\" in \"keepalive\" directive", at: directive.location)
                }
            case "keepalive_timeout": definition.keepaliveTimeout = try DirectiveValues.time(directive)
            case "keepalive_requests": definition.keepaliveRequests = try DirectiveValues.integer(directive)
            case "keepalive_time": _ = try DirectiveValues.time(directive)
            case "zone": break  // Shared memory is moot: one process holds the state.
            case "health_check": definition.healthCheck = try parseHealthCheck(directive)
            case "queue":
                guard let first = directive.arguments.first, let capacity = Int(first.value), capacity > 0 else {
                    throw ConfigError("invalid value \"\(directive.arguments.first?.value ?? "")\" in \"queue\" directive", at: directive.location)
                }
                var timeout: Int64 = 60_000
                for argument in directive.arguments.dropFirst() {
                    guard argument.value.hasPrefix("timeout="), let value = DirectiveValues.milliseconds(String(argument.value.dropFirst(8))) else {
                        throw ConfigError("invalid parameter \"\(argument.value)\"", at: directive.location)
                    }
                    timeout = value
                }
                definition.queue = (capacity, timeout)
            default:
                throw ConfigError("\"\(directive.name)\" directive is not allowed here", at: directive.location)
            }
        }
        for directive in scope.directives where directive.name == "server" {
            definition.servers.append(try parseServer(directive, method: definition.method))
        }
        if definition.servers.isEmpty && requiresServers {
            throw ConfigError("no servers are inside upstream", at: location)
        }
        return definition
    }

    static func parseServer(_ directive: Directive, method: BalancingMethod) throws(ConfigError) -> (address: UpstreamAddress, peer: PeerConfiguration) {
        guard let first = directive.arguments.first else {
            throw ConfigError("invalid number of arguments in \"server\" directive", at: directive.location)
        }
        let address = try parseAddress(first.value, directive: directive)
        var peer = PeerConfiguration(name: first.value)
        for argument in directive.arguments.dropFirst() {
            let text = argument.value
            func number(_ prefix: String) throws(ConfigError) -> Int {
                guard let value = Int(text.dropFirst(prefix.count)), value >= 0 else {
                    throw ConfigError("invalid parameter \"\(text)\"", at: directive.location)
                }
                return value
            }
            if text.hasPrefix("weight=") {
                peer.weight = try number("weight=")
                if peer.weight == 0 { throw ConfigError("invalid parameter \"\(text)\"", at: directive.location) }
            } else if text.hasPrefix("max_fails=") {
                peer.maxFails = try number("max_fails=")
            } else if text.hasPrefix("fail_timeout=") {
                guard let value = DirectiveValues.milliseconds(String(text.dropFirst(13))) else {
                    throw ConfigError("invalid parameter \"\(text)\"", at: directive.location)
                }
                peer.failTimeout = value
            } else if text.hasPrefix("max_conns=") {
                peer.maxConns = try number("max_conns=")
            } else if text == "backup" {
                guard method.supportsBackup else {
                    throw ConfigError("balancing method does not support parameter \"backup\"", at: directive.location)
                }
                peer.isBackup = true
            } else if text == "down" {
                peer.isDown = true
            } else {
                throw ConfigError("invalid parameter \"\(text)\"", at: directive.location)
            }
        }
        return (address, peer)
    }

    /// `unix:/path`, `HOST:PORT`, `HOST` (port 80), `[IPv6]:PORT`.
    static func parseAddress(_ text: String, directive: Directive) throws(ConfigError) -> UpstreamAddress {
        if text.lowercased().hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty else { throw ConfigError("no path in the unix domain socket in upstream \"\(text)\"", at: directive.location) }
            return .unix(path: path)
        }
        var host = Substring(text)
        var port = 80
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else {
                throw ConfigError("invalid host in upstream \"\(text)\"", at: directive.location)
            }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()), (1...65535).contains(value) else {
                    throw ConfigError("invalid port in upstream \"\(text)\"", at: directive.location)
                }
                port = value
            }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]), (1...65535).contains(value) else {
                throw ConfigError("invalid port in upstream \"\(text)\"", at: directive.location)
            }
            port = value
            host = host[..<colon]
        }
        guard !host.isEmpty else { throw ConfigError("no host in upstream \"\(text)\"", at: directive.location) }
        return .tcp(host: String(host), port: port)
    }

    static func parseHealthCheck(_ directive: Directive) throws(ConfigError) -> HealthCheckSettings {
        var settings = HealthCheckSettings()
        var timeoutSet = false
        for argument in directive.arguments {
            let text = argument.value
            guard let eq = text.firstIndex(of: "=") else {
                throw ConfigError("invalid parameter \"\(text)\"", at: directive.location)
            }
            let key = text[..<eq]
            let value = String(text[text.index(after: eq)...])
            switch key {
            case "uri":
                guard value.hasPrefix("/") else { throw ConfigError("invalid parameter \"\(text)\"", at: directive.location) }
                settings.uri = value
            case "interval":
                guard let ms = DirectiveValues.milliseconds(value), ms > 0 else { throw ConfigError("invalid parameter \"\(text)\"", at: directive.location) }
                settings.interval = ms
            case "fails":
                guard let n = Int(value), n > 0 else { throw ConfigError("invalid parameter \"\(text)\"", at: directive.location) }
                settings.fails = n
            case "passes":
                guard let n = Int(value), n > 0 else { throw ConfigError("invalid parameter \"\(text)\"", at: directive.location) }
                settings.passes = n
            case "timeout":
                guard let ms = DirectiveValues.milliseconds(value), ms > 0 else { throw ConfigError("invalid parameter \"\(text)\"", at: directive.location) }
                settings.timeout = ms
                timeoutSet = true
            default:
                throw ConfigError("invalid parameter \"\(text)\"", at: directive.location)
            }
        }
        if !timeoutSet { settings.timeout = min(settings.interval, 5_000) }
        return settings
    }
}
