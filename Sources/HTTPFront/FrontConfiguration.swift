import NIOCore
import NIOSSL
import NginxConfig

/// A virtual server, compiled: its locations and server-level settings.
final class VirtualServer: Sendable {
    let block: ServerBlock
    /// `$server_name`: the first name written, "" when none.
    let primaryName: String
    let locations: LocationTree<LocationSettings>
    /// Used when no location matches (nginx: the server's own configuration).
    let serverLevel: LocationSettings
    /// A `return` at server level runs before location matching.
    let serverRewrite: RewriteProgram?
    let largeHeaderBuffers: HTTPRequestParser.Limits
    let clientHeaderTimeout: Int64
    /// `merge_slashes`: `//` in the URI becomes `/` (nginx's default).
    let mergeSlashes: Bool

    init(block: ServerBlock, compiler: SettingsCompiler) throws(ConfigError) {
        self.block = block
        var names = Set<String>()
        for case .regex(let source) in block.names {
            let body = source.hasPrefix("~") ? String(source.dropFirst()) : source
            if let regex = try? ConfigRegex(body, caseInsensitive: true) { names.formUnion(regex.captureNames) }
        }
        compiler.serverCaptureNames = names
        primaryName = block.names.first.map { name -> String in
            switch name {
            case .exact(let s), .leadingWildcard(let s), .trailingWildcard(let s), .regex(let s): return s
            }
        } ?? ""
        serverLevel = try LocationSettings(scope: block.scope, match: nil, compiler: compiler)
        serverRewrite = serverLevel.rewrite
        var tree = LocationTree<LocationSettings>()
        for location in block.locations {
            tree.add(try Self.node(location, compiler: compiler))
        }
        locations = tree
        var limits = HTTPRequestParser.Limits()
        if let directive = block.scope.effective("large_client_header_buffers") {
            guard directive.values.count == 2, let count = ConfigValues.parseNumber(directive.values[0]), count > 0,
                  let size = ConfigValues.parseSize(directive.values[1]), size > 0 else {
                throw ConfigError("invalid value in \"large_client_header_buffers\" directive", at: directive.location)
            }
            limits = HTTPRequestParser.Limits(largeBufferSize: size, largeBufferCount: count)
        }
        limits.ignoreInvalidHeaders = try block.scope.flag("ignore_invalid_headers", default: true)
        limits.underscoresInHeaders = try block.scope.flag("underscores_in_headers", default: false)
        mergeSlashes = try block.scope.flag("merge_slashes", default: true)
        largeHeaderBuffers = limits
        clientHeaderTimeout = Int64(try block.scope.milliseconds("client_header_timeout", default: 60_000))
    }

    private static func node(_ location: LocationBlock, compiler: SettingsCompiler) throws(ConfigError) -> LocationTree<LocationSettings>.Node {
        var regex: ConfigRegex?
        if case .regex(let source, let caseInsensitive) = location.match {
            do { regex = try ConfigRegex(source, caseInsensitive: caseInsensitive) } catch {
                throw ConfigError("invalid regex \(error.description)", at: location.location)
            }
        }
        var nested = LocationTree<LocationSettings>()
        for inner in location.nested { nested.add(try node(inner, compiler: compiler)) }
        let settings = try LocationSettings(scope: location.scope, match: location.match, compiler: compiler)
        return .init(match: location.match, regex: regex, payload: settings, nested: nested)
    }

    func namedLocation(_ name: String) -> LocationSettings? { locations.namedLocation(name) }
}

/// What one listening socket serves: the servers per local address (a
/// specific address wins over the wildcard of the same port, as in nginx).
struct ListenerPlan: Sendable {
    var endpoint: ListenAddress.Endpoint
    /// Keyed by the local IP address as text ("" for the wildcard), for TCP listeners.
    var tables: [String: ServerNameTable<VirtualServer>]
    var parameters: [String]
    /// Set when a `listen` of this address has `ssl`.
    var tls: ListenerTLS? = nil

    func table(forLocalAddress address: String?) -> ServerNameTable<VirtualServer> {
        if let address, let table = tables[address] { return table }
        return tables[""] ?? tables.values.first!
    }
}

/// The whole front, compiled from a `Configuration`.
struct FrontConfiguration: Sendable {
    var listeners: [ListenerPlan]
    var servers: [VirtualServer]
    var workerThreads: Int
    /// `worker_cpu_affinity`, applied to the loops at start.
    var cpuAffinity: CPUAffinity
    var logFormats: [String: LogFormat]
    /// Every access log file, opened by the server at start and flushed at stop.
    var accessLogFiles: [AccessLogFile]

    init(_ configuration: Configuration, modules: [any ContentModule] = []) throws(ConfigError) {
        let compiler = try SettingsCompiler(configuration: configuration, prefix: configuration.prefix, modules: modules)
        var servers: [VirtualServer] = []
        for block in configuration.http?.servers ?? [] {
            servers.append(try VirtualServer(block: block, compiler: compiler))
        }
        self.servers = servers
        self.logFormats = compiler.logFormats
        self.accessLogFiles = compiler.accessLogFiles

        // Group servers by what is bound: TCP (host, port) and unix paths.
        struct Binding { var listen: ListenAddress; var servers: [VirtualServer]; var hasDefault = false; var sslListen: ListenAddress? }
        var bindings: [ListenAddress.Endpoint: Binding] = [:]
        var order: [ListenAddress.Endpoint] = []
        for server in servers {
            var listens = server.block.listens
            if listens.isEmpty {
                listens = [ListenAddress(endpoint: .tcp(host: nil, port: 80), location: server.block.location)]
            }
            for listen in listens {
                if bindings[listen.endpoint] == nil {
                    bindings[listen.endpoint] = Binding(listen: listen, servers: [])
                    order.append(listen.endpoint)
                }
                // nginx: `ssl` on any `listen` of an address makes the whole socket TLS.
                if listen.parameters.contains("ssl"), bindings[listen.endpoint]!.sslListen == nil {
                    bindings[listen.endpoint]!.sslListen = listen
                }
                if listen.isDefaultServer {
                    if bindings[listen.endpoint]!.hasDefault {
                        throw ConfigError("a duplicate default server for \(Self.describe(listen.endpoint))", at: listen.location)
                    }
                    bindings[listen.endpoint]!.hasDefault = true
                    bindings[listen.endpoint]!.listen.isDefaultServer = true
                    bindings[listen.endpoint]!.servers.insert(server, at: 0)
                } else {
                    bindings[listen.endpoint]!.servers.append(server)
                }
            }
        }
        func table(_ servers: [VirtualServer]) throws(ConfigError) -> ServerNameTable<VirtualServer> {
            var table = ServerNameTable(defaultServer: servers[0])
            for server in servers {
                do { try table.add(server.block.names, server: server) } catch {
                    throw ConfigError("invalid server_name regex \(error.description)", at: server.block.location)
                }
            }
            return table
        }
        let contexts = TLSContexts(configuration: configuration)
        func tls(_ tables: [String: ServerNameTable<VirtualServer>], _ endpoints: [ListenAddress.Endpoint]) throws(ConfigError) -> ListenerTLS? {
            guard let sslListen = endpoints.lazy.compactMap({ bindings[$0]?.sslListen }).first else { return nil }
            var byServer: [ObjectIdentifier: NIOSSLContext] = [:]
            for endpoint in endpoints {
                for server in bindings[endpoint]?.servers ?? [] {
                    byServer[ObjectIdentifier(server)] = try contexts.context(for: server, listen: sslListen)
                }
            }
            return ListenerTLS(tables: tables, contexts: byServer)
        }
        var plans: [ListenerPlan] = []
        var wildcardPorts: Set<Int> = []
        for endpoint in order { if case .tcp(nil, let port) = endpoint { wildcardPorts.insert(port) } }
        for endpoint in order {
            let binding = bindings[endpoint]!
            switch endpoint {
            case .unix:
                let tables = ["": try table(binding.servers)]
                plans.append(ListenerPlan(endpoint: endpoint, tables: tables, parameters: binding.listen.parameters,
                                          tls: try tls(tables, [endpoint])))
            case .tcp(let host, let port):
                if host != nil && wildcardPorts.contains(port) { continue }
                var tables: [String: ServerNameTable<VirtualServer>] = [:]
                var answered = [endpoint]
                if host == nil {
                    // Specific addresses of the same port are answered by this socket.
                    for other in order {
                        if case .tcp(let otherHost?, port) = other {
                            tables[otherHost.lowercased()] = try table(bindings[other]!.servers)
                            answered.append(other)
                        }
                    }
                }
                tables[host?.lowercased() ?? ""] = try table(binding.servers)
                if host != nil { tables[""] = tables[host!.lowercased()] }
                plans.append(ListenerPlan(endpoint: endpoint, tables: tables, parameters: binding.listen.parameters,
                                          tls: try tls(tables, answered)))
            }
        }
        listeners = plans

        if let directive = configuration.main.effective("worker_processes"), directive.values.first != "auto" {
            guard let n = ConfigValues.parseNumber(directive.values[0]), n > 0 else {
                throw ConfigError("invalid value \"\(directive.values[0])\" in \"worker_processes\" directive", at: directive.location)
            }
            workerThreads = n
        } else {
            workerThreads = System.coreCount
        }
        if let directive = configuration.main.effective("worker_cpu_affinity") {
            cpuAffinity = try CPUAffinity.parse(directive.values, at: directive.location)
        } else {
            cpuAffinity = .defaultBinding
        }
    }

    static func describe(_ endpoint: ListenAddress.Endpoint) -> String {
        switch endpoint {
        case .tcp(let host?, let port): return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .tcp(nil, let port): return "0.0.0.0:\(port)"
        case .unix(let path): return "unix:\(path)"
        }
    }
}

/// Shared state while compiling locations: the prefix for relative paths,
/// `types` blocks, log formats and the content modules.
final class SettingsCompiler {
    let prefix: String
    let configuration: Configuration
    let modules: [any ContentModule]
    private(set) var logFormats: [String: LogFormat] = [:]
    private var typeCache: [SourceLocation: MimeTypeMap] = [:]
    private var logTargets: [String: AccessLogFile] = [:]
    /// Named captures of the `server_name` regexes of the server being compiled (`$name` in its directives).
    var serverCaptureNames: Set<String> = []

    init(configuration: Configuration, prefix: String, modules: [any ContentModule]) throws(ConfigError) {
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.configuration = configuration
        self.modules = modules
        logFormats["combined"] = try! LogFormat(name: "combined", source: LogFormat.combined, escape: .default)
        for directive in configuration.http?.scope.directives.named("log_format") ?? [] {
            var values = directive.values
            let name = values.removeFirst()
            var escape = LogFormat.Escape.default
            if let first = values.first, first.hasPrefix("escape=") {
                values.removeFirst()
                switch first.dropFirst(7) {
                case "default": escape = .default
                case "json": escape = .json
                case "none": escape = .none
                default: throw ConfigError("unknown log format escaping \"\(first.dropFirst(7))\"", at: directive.location)
                }
            }
            if name == "combined" && logFormats[name] != nil && directive.location != .commandLine {
                throw ConfigError("duplicate \"log_format\" name \"combined\"", at: directive.location)
            }
            do { logFormats[name] = try LogFormat(name: name, source: values.joined(), escape: escape) } catch {
                throw ConfigError(error.message, at: directive.location)
            }
        }
    }

    func absolute(_ path: String) -> String {
        if path.hasPrefix("/") || path.hasPrefix("$") { return path }
        return prefix + path
    }

    /// The `types` in effect at `scope`, shared between locations that inherit the same blocks.
    func types(for scope: ConfigScope) -> MimeTypeMap {
        let blocks = scope.effectiveList("types")
        guard let key = blocks.first?.location else { return .nginxDefault }
        if let cached = typeCache[key] { return cached }
        let result = MimeTypeMap(typesBlocks: blocks)
        typeCache[key] = result
        return result
    }

    func accessLogs(for scope: ConfigScope) throws(ConfigError) -> [AccessLogTarget] {
        let directives = scope.effectiveList("access_log")
        if directives.isEmpty {
            return [AccessLogTarget(file: file(prefix + "logs/access.log"), format: logFormats["combined"]!)]
        }
        var targets: [AccessLogTarget] = []
        for directive in directives {
            if directive.values.first == "off" { return [] }
            let path = absolute(directive.values[0])
            if path.contains("$") {
                throw ConfigError("\"access_log\" with variables in the path is not supported by gantry", at: directive.location)
            }
            let formatName = directive.values.count > 1 ? directive.values[1] : "combined"
            guard let format = logFormats[formatName] else {
                throw ConfigError("unknown log format \"\(formatName)\"", at: directive.location)
            }
            for parameter in directive.values.dropFirst(2) {
                if parameter.hasPrefix("buffer=") || parameter.hasPrefix("flush=") { continue }
                throw ConfigError("\"access_log\" parameter \"\(parameter)\" is not supported by gantry", at: directive.location)
            }
            targets.append(AccessLogTarget(file: file(path), format: format))
        }
        return targets
    }

    private func file(_ path: String) -> AccessLogFile {
        if let existing = logTargets[path] { return existing }
        let created = AccessLogFile(path: path)
        logTargets[path] = created
        return created
    }

    var accessLogFiles: [AccessLogFile] { Array(logTargets.values) }

    func contentHandler(for scope: ConfigScope, match: LocationMatch?) throws(ConfigError) -> (any ContentHandler)? {
        guard match != nil else { return nil }
        for module in modules {
            if let handler = try module.contentHandler(for: scope, in: configuration) { return handler }
        }
        return nil
    }
}
