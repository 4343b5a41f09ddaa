#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Foundation
import HTTPFront
import Logging
import NIOCore
import Synchronization
import NginxConfig
import ReverseProxy
import Supervisor

/// The whole production stack from one configuration: the front (static files and proxy), and a
/// supervised pool of `gantry worker` processes per `app_pool`, each pool also an upstream group.
///
/// One process: the front's event loops, the supervisor's thread, and this thread, which waits
/// for signals (nginx's: `HUP` reload, `QUIT` graceful stop, `TERM`/`INT` fast stop, `USR1` reopen).
final class Stack: @unchecked Sendable {  // mutable state is touched by the main thread only; shared state is in Mutexes
    private let loader: ConfigurationLoader
    private var configuration: Configuration
    private let logger: Logger
    private let errorLogIsStderr: Bool
    private var privateSocketDirectory: String?
    private var pidFile: PidFile?
    /// Pools running as another account than the front's, as started (a reload may not change them).
    private var poolAccounts: [String: WorkerCredentials] = [:]
    private var currentPrivileges: StackPrivileges?
    /// The stderr of workers of other accounts, copied into the error log (see `LogRelay`).
    private var logRelay: LogRelay?
    /// Decides whether pool accounts apply, also at a reload (after the front dropped root).
    private let startedAsRoot = geteuid() == 0
    /// Plans by pool name, read by the endpoint callback on the supervisor thread.
    private let plans = Mutex<[String: AppPoolPlan]>([:])
    /// The proxy of the running configuration, last; the previous one (still finishing requests
    /// on connections opened before a reload) first. Both follow the pools' endpoints.
    private let proxies = Mutex<[ReverseProxyModule]>([])
    /// A reload in progress: per pool, the generation it must get past; when none is left the
    /// reload is complete (systemd hears `READY=1`).
    private let pendingReload = Mutex<PendingReload?>(nil)

    struct PendingReload {
        var generations: [String: Int]
        var started: ContinuousClock.Instant
    }

    init(loader: ConfigurationLoader, configuration: Configuration) {
        self.loader = loader
        self.configuration = configuration
        self.logger = StackRunner.makeErrorLogger(configuration)
        self.errorLogIsStderr = Self.errorLogPath(configuration) == nil
    }

    // MARK: Start-up

    func run() throws {
        if let daemon = configuration.main.own("daemon"), (try? daemon.flag()) == true {
            fail("\"daemon on\" is not supported by gantry in \(daemon.location.file):\(daemon.location.line): it runs in the foreground (under systemd, a container or a terminal)")
        }
        let privileges = try resolvePrivileges()
        currentPrivileges = privileges
        let socketDirectory = try makePrivateSocketDirectory()
        privateSocketDirectory = socketDirectory
        defer { removePrivateSocketDirectory() }

        var poolPlans: [AppPoolPlan]
        let proxy: ReverseProxyModule
        let server: HTTPFrontServer
        do {
            poolPlans = try StackPools.plans(for: configuration, privateSocketDirectory: socketDirectory,
                                             workerErrorLog: Self.errorLogPath(configuration))
            poolAccounts = try assignPoolAccounts(&poolPlans, configuration: configuration, privileges: privileges)
            proxy = try ReverseProxyModule(configuration: configuration, additional: poolPlans.map(\.upstream), logger: logger)
            server = try HTTPFrontServer(configuration: configuration, modules: [proxy], logger: logger)
        } catch {
            fail("\(error)")
        }
        plans.withLock { $0 = Dictionary(poolPlans.map { ($0.name, $0) }, uniquingKeysWith: { $1 }) }
        for plan in poolPlans where plan.socketDirectory != socketDirectory {
            if let credentials = plan.pool.credentials {
                makePoolDirectory(plan.socketDirectory, owner: credentials, frontGroup: privileges?.gid ?? getegid())
            } else {
                try makeDirectory(plan.socketDirectory, privileges: privileges)
            }
        }
        if !poolAccounts.isEmpty {
            // Pools of other accounts reach their own subdirectory through it; they cannot list it.
            _ = chmod(socketDirectory, 0o711)
        }

        do {
            try server.start()
        } catch {
            server.shutdownGracefully(timeout: .zero)
            fail("bind() failed: \(error)")
        }
        writePidFile(privileges: privileges)
        defer { pidFile?.remove() }

        proxy.prepareTemporaryDirectories(owner: privileges.map { (uid: $0.uid, gid: $0.gid) })

        // Started while still root: it starts the workers of pools with their own account.
        var spawner: PrivilegedSpawner?
        if !poolAccounts.isEmpty {
            do {
                spawner = try PrivilegedSpawner.start(allowed: Array(Set(poolAccounts.values)))
                // Their stderr reaches the error log through the front, which re-opens it on USR1.
                if let errorLog = Self.errorLogPath(configuration) {
                    logRelay = try LogRelay(path: errorLog)
                    attachLogRelay(&poolPlans)
                }
            } catch {
                server.shutdownGracefully(timeout: .zero)
                fail("cannot start the privileged spawner: \(error)")
            }
        }

        if let privileges {
            privileges.hand(socketDirectory)
            // Workers open the error log themselves, as the unprivileged user.
            if let errorLog = Self.errorLogPath(configuration) { privileges.hand(errorLog) }
            do { try privileges.drop() } catch {
                server.shutdownGracefully(timeout: .zero)
                fail("\(error)")
            }
        }

        // Signals are queued from here on; the workers inherit the default dispositions.
        let signals: SignalQueue
        do {
            signals = try SignalQueue(signals: [SIGHUP, SIGQUIT, SIGINT, SIGTERM, SIGUSR1, SIGCHLD])
        } catch {
            server.shutdownGracefully(timeout: .zero)
            fail("\(error)")
        }
        proxy.startHealthChecks(on: server.eventLoopGroup)

        var supervisor: Supervisor?
        if !poolPlans.isEmpty {
            let created: Supervisor
            do {
                created = try Supervisor(pools: poolPlans.map(\.pool), logger: logger, spawner: spawner)
            } catch {
                server.shutdownGracefully(timeout: .zero)
                fail("\(error)")
            }
            proxies.withLock { $0 = [proxy] }
            created.onEndpointsChange { [self] name, endpoints in
                guard let plan = plans.withLock({ $0[name] }) else { return }
                for module in proxies.withLock({ $0 }) {
                    module.replaceServers(ofGroup: name, with: plan.servers(for: endpoints.socketPaths))
                }
                reloadProgressed(pool: name, generation: endpoints.generation)
            }
            supervisor = created
            // Start-up waits for every worker to import its app; signals meanwhile still count.
            let waiter = Thread { [weak self] in self?.forwardSignalsDuringStartUp(signals, supervisor: created) }
            waiter.start()
            do {
                try created.start()
            } catch {
                signals.wake()
                server.shutdownGracefully(timeout: .zero)
                _ = created.waitUntilStopped()
                fail("\(error)")
            }
            startingUp.withLock { $0 = false }
            signals.wake()
            while waiterRunning.withLock({ $0 }) { usleep(1_000) }
            if created.isFinished {
                server.shutdownGracefully(timeout: .zero)
                return
            }
        }

        announceReady(server: server, pools: poolPlans, supervisor: supervisor)
        StackNotify.send("READY=1\nMAINPID=\(getpid())")
        let exitCode = serve(signals: signals, server: server, supervisor: supervisor)
        logger.notice("exit")
        if exitCode != 0 { throw ExitCode(exitCode) }
    }

    private let startingUp = Mutex(true)
    private let waiterRunning = Mutex(true)

    /// While `Supervisor.start()` blocks: a stop signal stops the pools (start() then returns), children are reaped.
    private func forwardSignalsDuringStartUp(_ signals: SignalQueue, supervisor: Supervisor) {
        defer { waiterRunning.withLock { $0 = false } }
        while startingUp.withLock({ $0 }) {
            guard let number = signals.next(timeout: 0.5) else { continue }
            switch number {
            case SIGCHLD: supervisor.childExited()
            case SIGQUIT: supervisor.stop(graceful: true)
            case SIGINT, SIGTERM: supervisor.stop(graceful: false)
            case 0: return
            default: logger.notice("signal \(signalName(number)) ignored while starting up")
            }
        }
    }

    /// The one line that says the stack serves: every URL the front listens on, and the pools.
    private func announceReady(server: HTTPFrontServer, pools: [AppPoolPlan], supervisor: Supervisor?) {
        let urls = server.localAddresses.map(Self.url(for:))
        var line = "ready: \(urls.joined(separator: " "))"
        for plan in pools {
            let count = supervisor?.endpoints(of: plan.name).pids.count ?? 0
            line += "; app_pool \(plan.name): \(count) worker\(count == 1 ? "" : "s") (\(plan.pool.arguments[1]))"
        }
        line += " (pid \(getpid()))"
        Console.error("gantry: [notice] \(line)")
        if !errorLogIsStderr { logger.notice("\(line)") }
    }

    static func url(for address: SocketAddress) -> String {
        switch address {
        case .v4(let v4): return "http://\(v4.host):\(address.port ?? 0)"
        case .v6(let v6): return "http://[\(v6.host)]:\(address.port ?? 0)"
        case .unixDomainSocket: return "unix:\(address.pathname ?? "")"
        }
    }

    // MARK: Running

    /// Waits for signals until the stack stops; returns the exit code.
    private func serve(signals: SignalQueue, server: HTTPFrontServer, supervisor: Supervisor?) -> Int32 {
        while true {
            if let supervisor, supervisor.isFinished {
                // The pools gave up (a worker keeps dying): the front cannot serve the app.
                let failure = supervisor.waitUntilStopped()
                if !errorLogIsStderr { logger.critical("app pools stopped\(failure.map { ": \($0)" } ?? ""); exiting") }
                Console.error("gantry: [emerg] app pools stopped\(failure.map { ": \($0)" } ?? "")")
                server.shutdownGracefully(timeout: .seconds(1))
                return 1
            }
            guard let number = signals.next(timeout: 1) else {
                checkReloadDeadline()
                continue
            }
            switch number {
            case SIGCHLD:
                supervisor?.childExited()
            case SIGHUP:
                logger.notice("signal \(SIGHUP) (SIGHUP) received, reconfiguring")
                reload(server: server, supervisor: supervisor)
            case SIGUSR1:
                logger.notice("signal \(SIGUSR1) (SIGUSR1) received, reopening logs")
                StackRunner.reopenErrorLog()
                server.reopenLogFiles()
                logRelay?.reopen()
                // The workers re-open theirs (the error log they append to, their access log).
                supervisor?.signalWorkers(SIGUSR1)
            case SIGQUIT:
                logger.notice("signal \(SIGQUIT) (SIGQUIT) received, shutting down gracefully")
                StackNotify.send("STOPPING=1")
                // The front finishes its in-flight responses while the workers still run them.
                server.shutdownGracefully(timeout: .seconds(Int64(maxGracefulTimeout())))
                logger.notice("front stopped; stopping the app workers gracefully")
                // The front's event loops are gone: workers leaving must not reach the proxy
                // (it would close its idle upstream connections on those loops).
                let stopped = proxies.withLock { proxies in
                    defer { proxies = [] }
                    return proxies
                }
                for module in stopped { module.stopHealthChecks() }
                stopPools(supervisor, graceful: true, signals: signals)
                return 0
            case SIGTERM, SIGINT:
                logger.notice("signal \(number) (\(signalName(number))) received, exiting")
                StackNotify.send("STOPPING=1")
                stopPools(supervisor, graceful: false, signals: signals)
                server.shutdownGracefully(timeout: .milliseconds(200))
                return 0
            default:
                break
            }
        }
    }

    private func stopPools(_ supervisor: Supervisor?, graceful: Bool, signals: SignalQueue) {
        guard let supervisor else { return }
        supervisor.stop(graceful: graceful)
        while !supervisor.isFinished {
            if let number = signals.next(timeout: 0.2) {
                if number == SIGCHLD { supervisor.childExited() }
                if number == SIGTERM || number == SIGINT { supervisor.stop(graceful: false) }
            }
        }
    }

    private func maxGracefulTimeout() -> Double {
        plans.withLock { plans in plans.values.map(\.pool.policy.gracefulTimeout).max() ?? 10 }
    }

    /// `HUP`: re-read the configuration; a bad one is refused and the running one keeps serving.
    /// A good one starts a new generation of every pool (fresh processes re-import the app); the
    /// front switches to it once it is ready and the old generation drains.
    private func reload(server: HTTPFrontServer, supervisor: Supervisor?) {
        StackNotify.reloading()
        let next: Configuration
        var nextPlans: [AppPoolPlan]
        let nextProxy: ReverseProxyModule
        do {
            var loaded = try loader.load()
            loaded.commandLineErrorLog = configuration.commandLineErrorLog
            next = loaded
            nextPlans = try StackPools.plans(for: next, privateSocketDirectory: privateSocketDirectory ?? "/tmp",
                                             workerErrorLog: Self.errorLogPath(next))
            let accounts = try assignPoolAccounts(&nextPlans, configuration: next, privileges: currentPrivileges)
            attachLogRelay(&nextPlans)
            for (name, credentials) in accounts where poolAccounts[name] != credentials {
                let location = next.http?.appPools.first(where: { $0.name == name })?.location
                throw ConfigError("app_pool \"\(name)\" runs as an account it did not have at start (\(credentials)): that needs a restart", at: location)
            }
            if supervisor == nil, !nextPlans.isEmpty {
                throw ConfigError("app_pool blocks added to a stack started without any need a restart", at: next.http?.appPools.first?.location)
            }
            nextProxy = try ReverseProxyModule(configuration: next, additional: nextPlans.map(\.upstream), logger: logger)
            // Pools that keep running are routed to their current workers until the new generation is ready.
            if let supervisor {
                for plan in nextPlans {
                    let endpoints = supervisor.endpoints(of: plan.name)
                    if !endpoints.socketPaths.isEmpty {
                        nextProxy.replaceServers(ofGroup: plan.name, with: plan.servers(for: endpoints.socketPaths))
                    }
                }
            }
            // A configuration the front cannot compile changes nothing.
            try server.reload(configuration: next, modules: [nextProxy])
            nextProxy.prepareTemporaryDirectories(owner: nil)
        } catch {
            logger.error("\(error); the configuration was not reloaded, the running one keeps serving")
            Console.error("gantry: [emerg] \(error); reload refused, the running configuration keeps serving")
            StackNotify.send("READY=1")
            return
        }
        for plan in nextPlans where plan.socketDirectory != privateSocketDirectory {
            try? makeDirectory(plan.socketDirectory, privileges: nil)
        }
        plans.withLock { plans in
            for plan in nextPlans { plans[plan.name] = plan }
        }
        let retired = proxies.withLock { proxies -> [ReverseProxyModule] in
            let dropped = proxies.dropLast()
            proxies = Array(proxies.suffix(1)) + [nextProxy]
            return Array(dropped)
        }
        for module in retired { module.stopHealthChecks() }
        proxies.withLock { $0.first?.stopHealthChecks() }
        nextProxy.startHealthChecks(on: server.eventLoopGroup)
        configuration = next
        var waiting: [String: Int] = [:]
        for plan in nextPlans { waiting[plan.name] = supervisor?.endpoints(of: plan.name).generation ?? 0 }
        pendingReload.withLock { $0 = waiting.isEmpty ? nil : PendingReload(generations: waiting, started: .now) }
        if waiting.isEmpty { StackNotify.send("READY=1") }
        supervisor?.reload(with: nextPlans.map(\.pool))
        logger.notice("reloading: routes switched; a new generation of workers is starting")
    }

    /// Called on the supervisor thread as pools switch generations.
    private func reloadProgressed(pool: String, generation: Int) {
        let complete = pendingReload.withLock { pending -> Bool in
            guard var current = pending, let before = current.generations[pool], generation > before else { return false }
            current.generations[pool] = nil
            pending = current.generations.isEmpty ? nil : current
            return pending == nil
        }
        if complete {
            logger.notice("reload complete: every pool serves its new generation")
            StackNotify.send("READY=1")
        }
    }

    /// A pool whose new generation cannot start keeps its old one (the supervisor logs why);
    /// systemd is told the reload is over anyway, after the boot allowance.
    private func checkReloadDeadline() {
        let expired = pendingReload.withLock { pending -> Bool in
            guard let current = pending, ContinuousClock.now - current.started > .seconds(90) else { return false }
            pending = nil
            return true
        }
        if expired {
            logger.warning("reload incomplete after 90s: the pools that did not switch keep their previous generation")
            StackNotify.send("READY=1")
        }
    }

    // MARK: Files and privileges

    /// The main error log's file path, or nil for stderr.
    static func errorLogPath(_ configuration: Configuration) -> String? {
        var path = configuration.prefix + "logs/error.log"
        // The main level's, else the http level's (the front's error log, as StackRunner reads it).
        if let directive = configuration.main.own("error_log") ?? configuration.http?.scope.own("error_log") {
            path = directive.values[0]
        } else if let commandLine = configuration.commandLineErrorLog {
            path = commandLine
        }
        if path == "stderr" || path == "/dev/stderr" { return nil }
        return configuration.fullPath(path)
    }

    /// nginx's `pid`: written once the ports are bound, removed at exit. Default `logs/gantry.pid`
    /// under the prefix; its directory is created when missing (for that default only).
    private func writePidFile(privileges: StackPrivileges?) {
        let explicit = configuration.main.effective("pid")
        let path = configuration.fullPath(explicit?.values[0] ?? SignalCommand.defaultPidPath)
        let file = PidFile(path: path)
        do {
            if explicit == nil {
                // The default's directory is Gantry's: the dropped user may remove the file at exit.
                let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
                if mkdir(directory, 0o755) == 0 { privileges?.hand(directory) }
            }
            try file.write()
            pidFile = file
        } catch {
            if explicit != nil {
                fail("open() \"\(path)\" failed: \(error)")
            }
            logger.warning("cannot write the pid file \"\(path)\" (\(error)); `gantry -s` will not find this process")
        }
    }

    private func resolvePrivileges() throws -> StackPrivileges? {
        guard let user = configuration.main.own("user") else { return nil }
        guard geteuid() == 0 else {
            logger.warning("the \"user\" directive makes sense only if gantry runs with super-user privileges, ignored")
            return nil
        }
        do {
            return try StackPrivileges.resolve(user: user.values[0], group: user.values.count > 1 ? user.values[1] : nil)
        } catch {
            fail("\(error) (\"user\" in \(user.location.file):\(user.location.line))")
        }
    }

    /// The account each pool with its own `user`/`group` runs as, when it is not the front's:
    /// those pools get ``PoolConfiguration/credentials`` (started by the spawner) and their
    /// workers' stderr is relayed into the error log by the front (`LogRelay`).
    private func assignPoolAccounts(_ plans: inout [AppPoolPlan], configuration: Configuration,
                                    privileges: StackPrivileges?) throws -> [String: WorkerCredentials] {
        var accounts: [String: WorkerCredentials] = [:]
        let frontUID = privileges?.uid ?? geteuid()
        let frontGID = privileges?.gid ?? getegid()
        for index in plans.indices where plans[index].ownAccount {
            let plan = plans[index]
            let block = configuration.http?.appPools.first(where: { $0.name == plan.name })
            let directive = block?.scope.own("user") ?? block?.scope.own("group")
            guard startedAsRoot else {
                if plan.user != configuration.main.own("user")?.values[0] || block?.scope.own("group") != nil {
                    logger.warning("the \"user\" and \"group\" of app_pool \"\(plan.name)\" make sense only if gantry runs with super-user privileges, ignored")
                }
                continue
            }
            guard let user = plan.user else {
                throw ConfigError("\"group\" in app_pool \"\(plan.name)\" needs a \"user\" (in the block or the main context)", at: directive?.location)
            }
            let credentials: WorkerCredentials
            do { credentials = try WorkerCredentials.lookUp(user: user, group: plan.group) } catch {
                throw ConfigError("\(error.operation) failed (app_pool \"\(plan.name)\")", at: directive?.location)
            }
            if credentials.uid == frontUID && credentials.gid == frontGID { continue }
            guard credentials.uid != 0, credentials.gid != 0 else {
                throw ConfigError("app_pool \"\(plan.name)\" workers may not run as root when the front does not", at: directive?.location)
            }
            plans[index].pool.credentials = credentials
            // Its account may not open the error log: it writes to stderr, relayed by the front.
            if let position = plans[index].pool.arguments.firstIndex(of: "--error-logfile") {
                plans[index].pool.arguments.removeSubrange(position...position + 1)
            }
            accounts[plan.name] = credentials
        }
        return accounts
    }

    private func attachLogRelay(_ plans: inout [AppPoolPlan]) {
        guard let logRelay else { return }
        for index in plans.indices where plans[index].pool.credentials != nil {
            plans[index].pool.standardErrorFD = logRelay.writeFD
        }
    }

    /// A pool's own socket directory: its account creates sockets there; the front's group may
    /// enter it and remove a dead worker's socket (setgid, so the sockets get that group too), others
    /// may not: 02770. An existing directory (`socket_dir`) is left as it is: its owner set it up.
    private func makePoolDirectory(_ path: String, owner: WorkerCredentials, frontGroup: gid_t) {
        var info = stat()
        if stat(path, &info) == 0 { return }
        guard mkdir(path, 0o700) == 0 else {
            fail("mkdir() \"\(path)\" failed (\(errno): \(String(cString: strerror(errno))))")
        }
        guard chown(path, owner.uid, frontGroup) == 0, chmod(path, 0o2770) == 0 else {
            fail("chown() \"\(path)\" failed (\(errno): \(String(cString: strerror(errno))))")
        }
    }

    /// A directory only this run's account can enter (0700): its sockets are reachable by the front and no one else.
    private func makePrivateSocketDirectory() throws -> String {
        var template = Array("/tmp/gantry-\(getpid())-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { fail("mkdtemp() failed (\(errno): \(String(cString: strerror(errno))))") }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func makeDirectory(_ path: String, privileges: StackPrivileges?) throws {
        var info = stat()
        if stat(path, &info) == 0 { return }
        guard mkdir(path, 0o700) == 0 else {
            fail("mkdir() \"\(path)\" failed (\(errno): \(String(cString: strerror(errno))))")
        }
        privileges?.hand(path)
    }

    private func removePrivateSocketDirectory() {
        guard let directory = privateSocketDirectory else { return }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) {
            for entry in entries {
                let path = directory + "/" + entry
                // A pool's own directory: its workers removed their sockets as they stopped.
                if unlink(path) != 0 && errno == EISDIR { rmdir(path) }
            }
        }
        rmdir(directory)
    }

    /// An `[emerg]` line (stderr and the error log) and exit status 1.
    private func fail(_ message: String) -> Never {
        if !errorLogIsStderr { logger.critical("\(message)") }
        Console.error("gantry: [emerg] \(message)")
        pidFile?.remove()
        removePrivateSocketDirectory()
        StackRunner.closeErrorLog()
        Foundation.exit(1)
    }
}
