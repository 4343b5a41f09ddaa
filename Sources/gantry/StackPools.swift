#if canImport(Glibc)
import Glibc
#endif
import Balancer
import NginxConfig
import ReverseProxy
import Supervisor

/// One `app_pool NAME { … }`, as the supervisor runs it and the proxy balances over it.
struct AppPoolPlan: Sendable {
    var name: String
    /// The `gantry worker` processes: app, interpreter, counts, timeouts, one Unix socket each.
    var pool: PoolConfiguration
    /// The pool as an upstream group (least_conn; `keepalive`, `queue`, `health_check` from the block).
    /// Its servers are the workers' sockets, filled in as workers become ready.
    var upstream: UpstreamDefinition
    /// `user` / `group` of the block (the main `user` when not set).
    var user: String?
    var group: String?
    /// The block names its own `user` or `group`: its workers may run as another account than the
    /// front, in their own socket directory (see `Stack.assignPoolAccounts`).
    var ownAccount: Bool
    var socketDirectory: String
    var threads: Int

    /// Idle connections kept per event loop to a pool's workers when the block sets no `keepalive`.
    static let defaultKeepalive = 32

    /// The upstream servers for the workers accepting now. With `queue`, a worker takes at most
    /// `threads` requests at once (`max_conns`), so the rest wait in the front, not in a worker's backlog.
    func servers(for socketPaths: [String]) -> [(address: UpstreamAddress, peer: PeerConfiguration)] {
        let maxConns = upstream.queue == nil ? 0 : threads
        return socketPaths.map { path in
            (address: .unix(path: path), peer: PeerConfiguration(name: "unix:\(path)", maxConns: maxConns))
        }
    }
}

/// Reads the `app_pool` blocks of a configuration into ``AppPoolPlan``s.
enum StackPools {
    /// - Parameters:
    ///   - privateSocketDirectory: where workers' sockets go when a pool has no `socket_dir`.
    ///   - workerErrorLog: the main error log file, which workers append to (nil: their stderr).
    static func plans(for configuration: Configuration, privateSocketDirectory: String,
                      workerErrorLog: String?, executable: String = "/proc/self/exe") throws(ConfigError) -> [AppPoolPlan] {
        var plans: [AppPoolPlan] = []
        for block in configuration.http?.appPools ?? [] {
            plans.append(try plan(block, configuration: configuration, privateSocketDirectory: privateSocketDirectory,
                                  workerErrorLog: workerErrorLog, executable: executable))
        }
        return plans
    }

    static func plan(_ block: AppPoolBlock, configuration: Configuration, privateSocketDirectory: String,
                     workerErrorLog: String?, executable: String) throws(ConfigError) -> AppPoolPlan {
        let scope = block.scope
        guard let wsgi = scope.own("wsgi") else {
            throw ConfigError("no \"wsgi\" directive in app_pool \"\(block.name)\"", at: block.location)
        }
        func number(_ name: String, _ fallback: Int, minimum: Int = 0) throws(ConfigError) -> Int {
            guard let directive = scope.own(name) else { return fallback }
            let value = try directive.number()
            guard value >= minimum else {
                throw ConfigError("invalid value \"\(directive.values[0])\" in \"\(name)\" directive", at: directive.location)
            }
            return value
        }
        func seconds(_ name: String, _ fallback: Int) throws(ConfigError) -> Int {
            guard let directive = scope.own(name) else { return fallback }
            return try directive.seconds()
        }
        let workers = try number("workers", 1, minimum: 1)
        let threads = try number("threads", 1, minimum: 1)
        let sameThread = try scope.own("same_thread")?.flag() ?? false
        if sameThread, threads > 1, let directive = scope.own("same_thread") {
            throw ConfigError("\"same_thread\" needs \"threads 1\": with more threads, requests run on any of them", at: directive.location)
        }
        let timeout = try seconds("timeout", 30)
        let gracefulTimeout = try seconds("graceful_timeout", 30)
        let maxRequests = try number("max_requests", 0)
        let jitter = try number("max_requests_jitter", 0)

        let ownAccount = scope.own("user") != nil || scope.own("group") != nil
        var socketDirectory = privateSocketDirectory
        if ownAccount {
            // Its own subdirectory, which that account owns (the private one belongs to the front's).
            socketDirectory = (privateSocketDirectory.hasSuffix("/") ? privateSocketDirectory : privateSocketDirectory + "/") + block.name
        }
        if let directory = scope.own("socket_dir") {
            socketDirectory = configuration.fullPath(directory.values[0])
        }
        var arguments = ["worker", wsgi.values[0]]
        if let chdir = scope.own("chdir") {
            arguments += ["--chdir", configuration.fullPath(chdir.values[0])]
        }
        if let python = scope.own("python") {
            let path = python.values[0]
            // `python3` is looked up on PATH; `venv/bin/python` is taken against the prefix.
            arguments += ["--python", path.contains("/") ? configuration.fullPath(path) : path]
        }
        for env in scope.directives where env.name == "env" {
            guard env.values[0].contains("="), !env.values[0].hasPrefix("=") else {
                throw ConfigError("invalid value \"\(env.values[0])\" in \"env\" directive, it must be KEY=VALUE", at: env.location)
            }
            arguments += ["--env", env.values[0]]
        }
        arguments += ["--threads", String(threads), "--timeout", String(timeout), "--graceful-timeout", String(gracefulTimeout)]
        if sameThread { arguments.append("--same-thread") }
        if let mode = scope.own("socket_mode") {
            guard let value = Int(mode.values[0], radix: 8), (0...0o777).contains(value), value & 0o600 == 0o600 else {
                throw ConfigError("invalid value \"\(mode.values[0])\" in \"socket_mode\" directive, it must be an octal mode such as 0600 or 0660", at: mode.location)
            }
            arguments += ["--umask", "0" + String(~value & 0o777, radix: 8)]
        } else if ownAccount {
            // 0660: the front connects through the directory's group (the front's), no one else gets in.
            arguments += ["--umask", "0117"]
        }
        if let workerErrorLog { arguments += ["--error-logfile", workerErrorLog] }

        // The proxy reads the block's balancing directives; its servers are the workers, filled in as they get ready.
        var upstream = try UpstreamDefinition.appPool(name: block.name, scope: scope, location: block.location,
                                                      sockets: [], maxConnsPerServer: 0)
        // Our own workers multiplex connections (an idle one holds no thread), so idle upstream
        // connections are kept by default: a location that sends HTTP/1.1 without `Connection: close`
        // (`proxy_http_version 1.1; proxy_set_header Connection "";`) then reuses them instead of
        // connecting per request. With nginx's default proxy headers nothing changes on the wire.
        if scope.own("keepalive") == nil { upstream.keepalive = AppPoolPlan.defaultKeepalive }
        // The main `user` applies unless the pool names its own.
        let mainUser = configuration.main.own("user")
        let user = scope.own("user")?.values[0] ?? mainUser?.values[0]
        let group = scope.own("group")?.values[0] ?? (scope.own("user") == nil ? mainUser?.values.dropFirst().first : nil)

        var pool = PoolConfiguration(
            name: block.name,
            workers: workers,
            arguments: arguments,
            sockets: .perWorker(directory: socketDirectory),
            policy: PoolPolicy(timeout: Double(timeout), gracefulTimeout: Double(gracefulTimeout)),
            maxRequests: MaxRequestsPolicy(maxRequests: maxRequests, jitter: jitter),
            executable: executable
        )
        if upstream.keepalive > 0 {
            // The front closes idle connections first, so it never sends a request on one the
            // worker is closing (a POST there could not be retried).
            let idleSeconds = (upstream.keepaliveTimeout + 999) / 1000
            pool.arguments += ["--keep-alive", String(idleSeconds + 5)]
        }
        return AppPoolPlan(name: block.name, pool: pool, upstream: upstream, user: user, group: group,
                           ownAccount: ownAccount, socketDirectory: socketDirectory, threads: threads)
    }
}
