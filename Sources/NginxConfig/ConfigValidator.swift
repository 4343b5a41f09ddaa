/// Checks every directive against the directive table as nginx's `ngx_conf_handler` does:
/// known name, allowed here, block or not, argument count, then Gantry's status, duplicates
/// and simple values (flags, sizes, times, numbers).
struct ConfigValidator {
    let table: DirectiveTable
    private(set) var warnings: [ConfigWarning] = []

    init(table: DirectiveTable) {
        self.table = table
    }

    mutating func validate(_ tree: [Directive]) throws(ConfigError) {
        var groups: Set<String> = []
        try validate(level: tree, context: .main, enclosingLocation: nil, groups: &groups)
    }

    /// One level, in config order. `groups` holds the upstream and app_pool names seen so far.
    private mutating func validate(level: [Directive], context: DirectiveContexts, enclosingLocation: LocationMatch?,
                                   groups: inout Set<String>) throws(ConfigError) {
        var seen: [String: Directive] = [:]
        var balancerSeen = false
        var serverEndpoints: Set<ListenAddress.Endpoint> = []
        for directive in level {
            let spec = try check(directive, in: context)
            if context == .serverIf || context == .locationIf, directive.name != "return" {
                // nginx runs an `if` in a location as a location of its own, with every directive;
                // Gantry runs `return` there and refuses the rest rather than drop it.
                throw ConfigError("\"\(directive.name)\" inside \"if\" is not supported by gantry (only \"return\")", at: directive.location)
            }
            try checkDuplicate(directive, spec: spec, seen: &seen)
            try checkValue(directive, spec: spec)
            var location = enclosingLocation
            switch (directive.name, context) {
            case ("listen", _):
                for listen in try ListenParser.parse(directive) {
                    try registerListen(listen, inServer: &serverEndpoints)
                }
            case ("server_name", _):
                for name in directive.values {
                    _ = try ServerNameParser.parse(name, at: directive.location, warnings: &warnings)
                }
            case ("if", _):
                _ = try IfCondition.parse(directive)
            case ("location", _):
                let match = try LocationMatch.parse(directive)
                if let enclosingLocation {
                    try ModelBuilder.checkNesting(match, inside: enclosingLocation, at: directive.location)
                }
                location = match
            case ("upstream", _), ("app_pool", _):
                let name = directive.values[0].lowercased()
                if groups.contains(name) {
                    throw ConfigError("duplicate upstream \"\(directive.values[0])\"", at: directive.location)
                }
                groups.insert(name)
            case ("ip_hash", .upstream), ("hash", .upstream), ("random", .upstream), ("least_conn", .upstream):
                if balancerSeen {
                    warnings.append(ConfigWarning("load balancing method redefined", at: directive.location))
                }
                balancerSeen = true
            case ("user", .main), ("user", .appPool), ("group", .appPool):
                if let warning = try Accounts.check(directive, inAppPool: context == .appPool) {
                    warnings.append(warning)
                }
            default:
                break
            }
            if let block = directive.block, let inner = Self.innerContext(of: directive.name, in: context) {
                try validate(level: block, context: inner, enclosingLocation: location, groups: &groups)
                try checkBlockEnd(directive)
            }
        }
    }

    /// Endpoints that a `listen` with socket options already claimed, across all servers.
    private var endpointsWithOptions: Set<ListenAddress.Endpoint> = []

    /// `a duplicate listen ADDR` (twice in one server) and `duplicate listen options for ADDR`
    /// (socket options given twice for one address), as nginx's `ngx_http_add_listen` reports them.
    private mutating func registerListen(_ listen: ListenAddress, inServer endpoints: inout Set<ListenAddress.Endpoint>) throws(ConfigError) {
        if !endpoints.insert(listen.endpoint).inserted {
            throw ConfigError("a duplicate listen \(listen.endpoint)", at: listen.location)
        }
        // `ssl` is no socket option: nginx merges it over the address's listens.
        if listen.parameters.contains(where: { $0 != "ssl" }) && !endpointsWithOptions.insert(listen.endpoint).inserted {
            throw ConfigError("duplicate listen options for \(listen.endpoint)", at: listen.location)
        }
    }

    /// Checks nginx makes when a block closes.
    private func checkBlockEnd(_ directive: Directive) throws(ConfigError) {
        guard directive.blockEndLine != nil, let block = directive.block else { return }
        switch directive.name {
        case "upstream" where block.named("server").isEmpty:
            throw ConfigError("no servers are inside upstream", at: directive.blockEnd)
        case "upstream" where block.named("server").allSatisfy({ $0.values.contains("backup") })
                && !block.contains(where: { ["ip_hash", "hash", "random"].contains($0.name) }):
            // (With ip_hash, hash or random, `backup` itself is the error, which the proxy reports.)
            throw ConfigError("no servers in upstream \"\(directive.values[0])\"", at: directive.location)
        case "app_pool" where block.named("wsgi").isEmpty:
            throw ConfigError("no \"wsgi\" directive in app_pool \"\(directive.values[0])\"", at: directive.blockEnd)
        default:
            break
        }
    }

    /// The context a block opens; nil for blocks whose contents are not directives (`types`, `map`).
    static func innerContext(of name: String, in context: DirectiveContexts) -> DirectiveContexts? {
        switch name {
        case "events": .events
        case "http": .http
        case "server" where context == .http: .server
        case "location": .location
        case "if": context == .server ? .serverIf : .locationIf
        case "limit_except": .limitExcept
        case "upstream": .upstream
        case "app_pool": .appPool
        default: nil
        }
    }

    private func check(_ directive: Directive, in context: DirectiveContexts) throws(ConfigError) -> DirectiveSpec {
        let name = directive.name
        let here = directive.location
        let rows = table.rows(named: name)
        guard !rows.isEmpty else {
            throw ConfigError("unknown directive \"\(name)\"", at: here)
        }
        guard let spec = rows.first(where: { $0.contexts.contains(context) }) else {
            throw ConfigError("\"\(name)\" directive is not allowed here", at: here)
        }
        if !spec.isBlock && directive.block != nil {
            throw ConfigError("directive \"\(name)\" is not terminated by \";\"", at: here)
        }
        if spec.isBlock && directive.block == nil {
            throw ConfigError("directive \"\(name)\" has no opening \"{\"", at: here)
        }
        if !spec.arity.accepts(argumentCount: directive.arguments.count) {
            throw ConfigError("invalid number of arguments in \"\(name)\" directive", at: here)
        }
        if spec.status == .unsupported {
            throw ConfigError("\"\(name)\" is not supported by gantry", at: here)
        }
        return spec
    }

    private func checkDuplicate(_ directive: Directive, spec: DirectiveSpec, seen: inout [String: Directive]) throws(ConfigError) {
        let name = directive.name
        if name == "root" || name == "alias" {
            // nginx keeps both in one slot (`ngx_http_core_root`).
            if let earlier = seen["root"] ?? seen["alias"] {
                if earlier.name == name {
                    throw ConfigError("\"\(name)\" directive is duplicate", at: directive.location)
                }
                throw ConfigError("\"\(name)\" directive is duplicate, \"\(earlier.name)\" directive was specified earlier", at: directive.location)
            }
            seen[name] = directive
            return
        }
        if !spec.repeatable, seen[name] != nil {
            throw ConfigError("\"\(name)\" directive is duplicate", at: directive.location)
        }
        seen[name] = directive
    }

    private mutating func checkValue(_ directive: Directive, spec: DirectiveSpec) throws(ConfigError) {
        switch spec.value {
        case .custom: break
        case .flag: _ = try directive.flag()
        case .number: _ = try directive.number()
        case .size: _ = try directive.size(allowGiga: false)
        case .offset: _ = try directive.size()
        case .seconds: _ = try directive.seconds()
        case .milliseconds: _ = try directive.milliseconds()
        case .oneOf(let words), .eachOf(let words):
            for value in directive.values where !words.contains(where: { $0.lowercased() == value.lowercased() }) {
                throw ConfigError("invalid value \"\(value)\"", at: directive.location)
            }
        }
        try checkSpecial(directive)
        if case .partial = spec.status {
            if Self.tlsSettingsWithoutEffect.contains(directive.name) {
                warnings.append(ConfigWarning("\"\(directive.name)\" directive has no effect in gantry (swift-nio-ssl's defaults apply)", at: directive.location))
            } else if let refused = Self.tlsValuesRefused[directive.name], directive.values.first.map({ $0.lowercased() != refused }) ?? false {
                throw ConfigError("\"\(directive.name) \(directive.values[0])\" is not supported by gantry (only \"\(refused)\")", at: directive.location)
            } else if directive.name == "load_module" {
                warnings.append(ConfigWarning("\"load_module\" directive is ignored: gantry loads no dynamic modules", at: directive.location))
            }
        }
    }

    /// TLS directives read and checked but not applied: BoringSSL's own behaviour stands.
    static let tlsSettingsWithoutEffect: Set<String> = [
        "ssl_dhparam", "ssl_ecdh_curve", "ssl_verify_depth", "ssl_client_certificate", "ssl_trusted_certificate",
        "ssl_prefer_server_ciphers", "ssl_session_cache", "ssl_session_tickets", "ssl_session_ticket_key",
        "ssl_session_timeout", "ssl_crl", "ssl_ocsp", "ssl_ocsp_cache", "ssl_ocsp_responder", "ssl_stapling",
        "ssl_stapling_file", "ssl_stapling_responder", "ssl_stapling_verify",
    ]
    /// TLS directives of which only one value is honoured; another would be a silent hole
    /// (an unchecked client certificate, replayable early data).
    static let tlsValuesRefused: [String: String] = [
        "ssl_verify_client": "off", "ssl_early_data": "off", "ssl_reject_handshake": "off",
    ]

    /// Checks for directives with their own value syntax.
    private mutating func checkSpecial(_ directive: Directive) throws(ConfigError) {
        let here = directive.location
        let values = directive.values
        switch directive.name {
        case "allow", "deny":
            // ngx_http_access_rule: `all`, `unix:`, an address or a CIDR block.
            guard let parsed = AccessRule.parse(values[0], allow: directive.name == "allow") else {
                throw ConfigError("invalid parameter \"\(values[0])\"", at: here)
            }
            if parsed.hostBitsSet {
                warnings.append(ConfigWarning("low address bits of \(values[0]) are meaningless", at: here))
            }
        case "autoindex":
            if try directive.flag() {
                throw ConfigError("\"autoindex on\" is not supported by gantry", at: here)
            }
        case "keepalive_timeout" where values.count <= 2 && directive.block == nil:
            // http core: `keepalive_timeout TIMEOUT [HEADER_TIMEOUT]` (ms, then s); upstream: ms.
            _ = try directive.milliseconds(0)
            if values.count == 2 { _ = try directive.seconds(1) }
        case "large_client_header_buffers":
            // nginx's `ngx_conf_set_bufs_slot`: a count and a size, both non-zero.
            guard let count = ConfigValues.parseNumber(values[0]), count > 0,
                  let size = ConfigValues.parseSize(values[1], allowGiga: false), size > 0 else {
                throw ConfigError("\"large_client_header_buffers\" directive invalid value", at: here)
            }
        case "proxy_redirect" where values.count == 1:
            guard values[0] == "off" || values[0] == "default" else {
                throw ConfigError("invalid parameter \"\(values[0])\"", at: here)
            }
        case "expires":
            try checkExpires(directive)
        case "types":
            checkTypes(directive)
        case "error_log":
            try checkErrorLog(directive)
        case "socket_mode":
            guard (3...4).contains(values[0].count), values[0].allSatisfy({ ("0"..."7").contains($0) }) else {
                throw ConfigError("invalid value \"\(values[0])\" in \"socket_mode\" directive, it must be an octal mode such as 0660", at: here)
            }
        case "env":  // in app_pool (the main-context env is refused)
            guard let equals = values[0].firstIndex(of: "="), equals != values[0].startIndex else {
                throw ConfigError("invalid value \"\(values[0])\" in \"env\" directive, it must be NAME=VALUE", at: here)
            }
        case "gzip_comp_level":
            guard let level = ConfigValues.parseNumber(values[0]), (1...9).contains(level) else {
                throw ConfigError("value must be between 1 and 9", at: here)
            }
        case "index":
            for value in values.dropLast() where value.hasPrefix("/") {
                warnings.append(ConfigWarning("only the last index in \"index\" directive should be absolute", at: here))
                break
            }
        case "disable_symlinks":
            for value in values {
                let isFrom = value.hasPrefix("from=") && value.count > 5
                guard ["off", "on", "if_not_owner"].contains(value) || isFrom else {
                    throw ConfigError("invalid parameter \"\(value)\"", at: here)
                }
            }
        case "aio":
            guard ["on", "off", "threads"].contains(values[0]) || values[0].hasPrefix("threads=") else {
                throw ConfigError("\"aio\" directive invalid value", at: here)
            }
        case "directio":
            guard values[0] == "off" || ConfigValues.parseSize(values[0]) != nil else {
                throw ConfigError("\"directio\" directive invalid value", at: here)
            }
        case "use" where directive.arguments.count == 1:
            guard ["epoll", "poll", "select"].contains(values[0]) else {
                throw ConfigError("invalid event type \"\(values[0])\"", at: here)
            }
        case "worker_cpu_affinity":
            _ = try CPUAffinity.parse(values, at: here)
        case "worker_processes":
            if values[0] != "auto" && ConfigValues.parseNumber(values[0]) == nil {
                throw ConfigError("invalid value \"\(values[0])\" in \"worker_processes\" directive", at: here)
            }
        default:
            break
        }
    }

    /// `error_log FILE [LEVEL]`, as nginx's `ngx_log_set_levels` reads the levels.
    private func checkErrorLog(_ directive: Directive) throws(ConfigError) {
        let target = directive.values[0]
        for unsupported in ["syslog:", "memory:"] where target.hasPrefix(unsupported) {
            throw ConfigError("\"error_log \(unsupported)\" is not supported by gantry", at: directive.location)
        }
        let levels = ["emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"]
        let debugMasks = ["debug_core", "debug_alloc", "debug_mutex", "debug_event", "debug_http", "debug_mail", "debug_stream"]
        var levelSeen = false
        for value in directive.values.dropFirst() {
            if levels.contains(value) {
                if levelSeen { throw ConfigError("duplicate log level \"\(value)\"", at: directive.location) }
                levelSeen = true
            } else if !debugMasks.contains(value) {
                throw ConfigError("invalid log level \"\(value)\"", at: directive.location)
            }
        }
    }

    /// nginx warns when one `types` level names an extension twice (the later one wins).
    private mutating func checkTypes(_ directive: Directive) {
        var seen: [String: String] = [:]
        for entry in directive.block ?? [] {
            for ext in entry.values.map({ $0.lowercased() }) {
                if let previous = seen[ext] {
                    warnings.append(ConfigWarning("duplicate extension \"\(ext)\", content type: \"\(entry.name)\", previous content type: \"\(previous)\"", at: entry.location))
                }
                seen[ext] = entry.name
            }
        }
    }

    private func checkExpires(_ directive: Directive) throws(ConfigError) {
        var values = directive.values
        if values.count == 2 {
            guard values[0] == "modified" else {
                throw ConfigError("\"expires\" directive invalid value", at: directive.location)
            }
            values.removeFirst()
        }
        var value = values[0]
        if ["epoch", "max", "off"].contains(value) || value.contains("$") { return }
        if value.hasPrefix("@") {
            // @15h30m: a time of day.
            value.removeFirst()
            guard let seconds = ConfigValues.parseTime(value, unit: .seconds), seconds <= 24 * 60 * 60 else {
                throw ConfigError("\"expires\" directive daily time value must be less than 24 hours", at: directive.location)
            }
            return
        }
        if value.hasPrefix("+") || value.hasPrefix("-") { value.removeFirst() }
        guard ConfigValues.parseTime(value, unit: .seconds) != nil else {
            throw ConfigError("\"expires\" directive invalid value", at: directive.location)
        }
    }
}
