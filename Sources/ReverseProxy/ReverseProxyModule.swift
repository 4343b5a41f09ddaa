#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Balancer
import HTTPFront
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NginxConfig

/// The reverse proxy as a front content module: claims every location with its own
/// `proxy_pass`, and owns the `upstream` groups (balancers, pools, health checks).
public final class ReverseProxyModule: ContentModule {
    public let groups: [String: UpstreamGroup]
    private let implicitGroups = NIOLockedValueBox<[String: UpstreamGroup]>([:])
    let logger: Logger
    private let healthCheckers = NIOLockedValueBox<[HealthChecker]>([])
    private let temporaryDirectorySet = NIOLockedValueBox<Set<String>>([])

    /// Builds the upstream groups of `configuration`'s `upstream` blocks, plus `additional`
    /// ones (app pools register theirs this way).
    public init(configuration: Configuration, additional: [UpstreamDefinition] = [],
                logger: Logger = Logger(label: "gantry.proxy")) throws(ConfigError) {
        self.logger = logger
        var groups: [String: UpstreamGroup] = [:]
        for block in configuration.http?.upstreams ?? [] {
            if groups[block.name] != nil {
                throw ConfigError("duplicate upstream \"\(block.name)\"", at: block.location)
            }
            let definition = try UpstreamDefinition.parse(name: block.name, scope: block.scope, location: block.location)
            groups[block.name] = UpstreamGroup(definition: definition, logger: logger)
        }
        for definition in additional {
            if groups[definition.name] != nil {
                throw ConfigError("duplicate upstream \"\(definition.name)\"", at: definition.location)
            }
            groups[definition.name] = UpstreamGroup(definition: definition, logger: logger)
        }
        self.groups = groups
    }

    public func contentHandler(for location: ConfigScope, in configuration: Configuration) throws(ConfigError) -> (any ContentHandler)? {
        let match = Self.findMatch(of: location, in: configuration)
        guard var settings = try ProxySettings.compile(location: location, match: match) else { return nil }
        settings.tempPath = configuration.fullPath(settings.tempPath)
        settings.clientBodyTempPath = configuration.fullPath(settings.clientBodyTempPath)
        temporaryDirectorySet.withLockedValue { $0.formUnion([settings.tempPath, settings.clientBodyTempPath]) }
        var fixedGroup: UpstreamGroup?
        if case .fixed(let target) = settings.destination {
            fixedGroup = try group(for: target, directive: settings.passDirective)
        }
        return ProxyContentHandler(module: self, settings: settings, fixedGroup: fixedGroup)
    }

    /// The group a `proxy_pass` URL names: an `upstream` when the host is one (and no port is given),
    /// else the implicit single-server group of that address.
    func group(for target: ProxyPassTarget, directive: Directive?) throws(ConfigError) -> UpstreamGroup {
        switch target.endpoint {
        case .host(let host, let port):
            if port == nil, let group = groups[host] { return group }
            return implicitGroup(.tcp(host: host, port: port ?? 80))
        case .unix(let path):
            return implicitGroup(.unix(path: path))
        }
    }

    func implicitGroup(_ address: UpstreamAddress) -> UpstreamGroup {
        implicitGroups.withLockedValue { groups in
            if let existing = groups[address.description] { return existing }
            let created = UpstreamGroup(implicit: address, name: address.description, logger: logger)
            groups[address.description] = created
            return created
        }
    }

    /// The `location` block whose scope is `scope`, for its match kind (prefix, regex, …).
    static func findMatch(of scope: ConfigScope, in configuration: Configuration) -> LocationMatch? {
        func search(_ locations: [LocationBlock]) -> LocationMatch? {
            for location in locations {
                if location.scope === scope { return location.match }
                if let found = search(location.nested) { return found }
            }
            return nil
        }
        for server in configuration.http?.servers ?? [] {
            if let found = search(server.locations) { return found }
        }
        return nil
    }

    // MARK: Temp directories

    /// The `proxy_temp_path` and `client_body_temp_path` directories of the locations compiled so far.
    public var temporaryDirectories: [String] {
        temporaryDirectorySet.withLockedValue { $0.sorted() }
    }

    /// Makes the temp directories (mode 0700) and gives them to `owner`, as nginx's master does
    /// before its workers drop root; a directory that cannot be made now is made (or reported)
    /// when a response first needs it.
    public func prepareTemporaryDirectories(owner: (uid: UInt32, gid: UInt32)?) {
        for path in temporaryDirectories {
            guard (try? TempFile.makeDirectory(path)) != nil, let owner else { continue }
            _ = chown(path, owner.uid, owner.gid)
        }
    }

    // MARK: Active health checks

    /// Starts `health_check` probing for every group that has one.
    public func startHealthChecks(on eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        var started: [HealthChecker] = []
        for group in groups.values.sorted(by: { $0.name < $1.name }) {
            guard let settings = group.healthCheck else { continue }
            let checker = HealthChecker(group: group, settings: settings, eventLoop: eventLoopGroup.next(), logger: logger)
            checker.start()
            started.append(checker)
        }
        healthCheckers.withLockedValue { $0.append(contentsOf: started) }
    }

    // MARK: Servers that change at run time (app pools)

    /// Replaces the servers of group `name` (an app pool's workers after a restart, a recycle or a
    /// reload): new requests balance over `servers` at once; requests already running finish on
    /// the old ones, and their retries (`proxy_next_upstream`) move to the new ones. Health checks
    /// follow the current list. False when there is no such group.
    @discardableResult
    public func replaceServers(ofGroup name: String, with servers: [(address: UpstreamAddress, peer: PeerConfiguration)]) -> Bool {
        guard let group = groups[name] else { return false }
        group.replaceServers(servers)
        return true
    }

    public func stopHealthChecks() {
        let checkers = healthCheckers.withLockedValue { checkers in
            defer { checkers = [] }
            return checkers
        }
        for checker in checkers { checker.stop() }
    }
}

/// The per-location handler: works out the destination and URI, then runs a `ProxyRequest`.
struct ProxyContentHandler: ContentHandler {
    let module: ReverseProxyModule
    let settings: ProxySettings
    let shared: SharedProxySettings
    let fixedGroup: UpstreamGroup?
    /// `$proxy_host`/`$proxy_port` of a fixed `proxy_pass`, formatted once per location.
    let fixedProxyVariables: ProxyVariables?

    init(module: ReverseProxyModule, settings: ProxySettings, fixedGroup: UpstreamGroup?) {
        self.module = module
        self.settings = settings
        self.shared = SharedProxySettings(settings)
        self.fixedGroup = fixedGroup
        if case .fixed(let target) = settings.destination {
            fixedProxyVariables = Self.proxyVariables(target)
        } else {
            fixedProxyVariables = nil
        }
    }

    func handle(_ exchange: HTTPExchange) {
        handle(client: exchange)
    }

    func handle(client: any ProxyClient, onFinish: (([UpstreamTry]) -> Void)? = nil) {
        let variables = client.variables
        let group: UpstreamGroup
        let uri: String
        let proxyVariables: ProxyVariables
        switch settings.destination {
        case .fixed(let target):
            group = fixedGroup!
            uri = UpstreamURI.make(targetURI: target.uri, locationPrefix: settings.locationPrefix,
                                   requestTarget: variables.requestURI, normalizedURI: variables.uri, args: variables.args)
            proxyVariables = fixedProxyVariables ?? Self.proxyVariables(target)
        case .variable(let template):
            let rendered = template.render(variables, proxy: ProxyVariables(proxyHost: "", proxyPort: ""))
            guard let target = try? ProxyPassTarget.parse(rendered),
                  let resolved = try? module.group(for: target, directive: nil) else {
                module.logger.error("invalid URL prefix in \"\(rendered)\"")
                client.sendError(.internalServerError)
                return
            }
            group = resolved
            // With variables, a URI part is used as is; without one, the client's request target.
            uri = target.uri ?? variables.requestURI
            proxyVariables = Self.proxyVariables(target)
        }
        let request = ProxyRequest(client: client, variables: variables, location: shared, group: group, upstreamURI: uri,
                                   proxyVariables: proxyVariables, logger: module.logger)
        request.onFinish = onFinish
        request.start()
    }

    static func proxyVariables(_ target: ProxyPassTarget) -> ProxyVariables {
        switch target.endpoint {
        case .host(_, let port): return ProxyVariables(proxyHost: target.proxyHost, proxyPort: String(port ?? 80))
        case .unix: return ProxyVariables(proxyHost: target.proxyHost, proxyPort: "")
        }
    }
}
