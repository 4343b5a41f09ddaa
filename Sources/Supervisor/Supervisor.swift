#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// The master: runs several pools of `gantry worker` processes on one dedicated
/// thread (poll on a wake pipe and the workers' control channels), driving each
/// pool's ``PoolStateMachine``.
///
/// Commands (`reload`, `setWorkerCount`, `stop`) may come from any thread, e.g. a
/// signal-queue thread: they are queued and the loop is woken through a pipe, as
/// gunicorn's `SIG_QUEUE` and wake-up pipe. No work happens in a signal handler.
public final class Supervisor: @unchecked Sendable {
    private enum Command {
        case reload
        case reconfigure([PoolConfiguration])
        case changeWorkerCount(pool: String?, delta: Int)
        case stop(graceful: Bool)
        case childExited
        case signalWorkers(Int32)
    }

    private struct Pool {
        var configuration: PoolConfiguration
        var machine: PoolStateMachine
    }

    private struct Child {
        var pool: Int
        var id: WorkerID
        var pid: pid_t
        var control: Int32?
        /// Started as another user by the spawner, which must also signal it.
        var viaSpawner = false
        var lines = LineBuffer()
        /// The control channel hit end-of-file: the process is exiting, reap it soon.
        var channelClosed = false
    }

    private let logger: Logger
    /// Supervisor thread only (after `start()`).
    private var pools: [Pool]
    private let initialPoolNames: Set<String>
    private var children: [WorkerID: Child] = [:]
    private var random = SystemRandomNumberGenerator()

    // Shared with callers, under `condition`.
    private let condition = NSCondition()
    private var commands: [Command] = []
    private var endpoints: [String: PoolEndpoints] = [:]
    private var servingPools = Set<String>()
    private var failure: PoolFailure?
    private var finished = false
    private var started = false
    private var changeHandler: (@Sendable (String, PoolEndpoints) -> Void)?

    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// Starts (and signals) the workers of pools with their own ``PoolConfiguration/credentials``.
    private let spawner: PrivilegedSpawner?

    public init(pools configurations: [PoolConfiguration], logger: Logger, spawner: PrivilegedSpawner? = nil) throws {
        precondition(!configurations.isEmpty, "a supervisor needs at least one pool")
        var fds: [Int32] = [-1, -1]
        // A socketpair, since it can be created CLOEXEC atomically (no window for a concurrent spawn to inherit it).
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue)
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else { throw SystemError("socketpair", errno) }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        self.logger = logger
        self.spawner = spawner
        initialPoolNames = Set(configurations.map(\.name))
        var firstNumber = 1
        pools = configurations.map { configuration in
            // Disjoint id ranges keep one WorkerID space across pools.
            defer { firstNumber += 1_000_000 }  // reconfigure() continues the sequence
            return Pool(configuration: configuration,
                        machine: PoolStateMachine(name: configuration.name, workers: configuration.workers,
                                                  policy: configuration.policy, firstWorkerNumber: firstNumber))
        }
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    // MARK: Public API

    /// Called (on the supervisor thread) whenever a pool's accepting workers change,
    /// e.g. when a reload's new generation takes over. Set it before ``start()``.
    public func onEndpointsChange(_ handler: @escaping @Sendable (String, PoolEndpoints) -> Void) {
        condition.withLock { changeHandler = handler }
    }

    /// Spawns every pool's workers and returns once all of them are `ready`.
    /// Throws the first ``PoolFailure`` (e.g. the app cannot be imported), after
    /// every worker has been stopped. Also returns if a ``stop(graceful:)`` came
    /// first (then ``isFinished`` is true).
    public func start() throws {
        condition.withLock {
            precondition(!started, "start() called twice")
            started = true
        }
        let thread = Thread { [self] in runLoop() }
        thread.name = "gantry-supervisor"
        thread.start()
        condition.lock()
        defer { condition.unlock() }
        while !finished && !initialPoolNames.isSubset(of: servingPools) {
            condition.wait()
        }
        if let failure { throw failure }
    }

    /// Blocks until every worker is gone; returns the failure that stopped the pools, if any.
    @discardableResult
    public func waitUntilStopped() -> PoolFailure? {
        condition.lock()
        defer { condition.unlock() }
        while !finished { condition.wait() }
        return failure
    }

    /// `HUP`: a new generation of every pool (new processes re-import the app), old ones drain once it is ready.
    public func reload() { enqueue(.reload) }

    /// The stack's `-s reload` with a re-read config: pools with a known name take the new
    /// settings (app, interpreter, count, timeouts) and reload; new names start; missing ones drain and stop.
    public func reload(with configurations: [PoolConfiguration]) { enqueue(.reconfigure(configurations)) }

    /// `TTIN` (+1) / `TTOU` (-1); `pool` nil means every pool.
    public func changeWorkerCount(pool: String? = nil, by delta: Int) { enqueue(.changeWorkerCount(pool: pool, delta: delta)) }

    /// `QUIT` (graceful) or `TERM`/`INT` (fast).
    public func stop(graceful: Bool) { enqueue(.stop(graceful: graceful)) }

    /// Sends `signal` to every worker, e.g. `USR1` so that they re-open their log files (as
    /// gunicorn's arbiter does for logrotate).
    public func signalWorkers(_ signal: Int32) { enqueue(.signalWorkers(signal)) }

    /// `SIGCHLD` arrived: reap now rather than at the next control-channel EOF or tick.
    public func childExited() { enqueue(.childExited) }

    public var isFinished: Bool { condition.withLock { finished } }

    /// The accepting workers of `pool` now.
    public func endpoints(of pool: String) -> PoolEndpoints {
        condition.withLock { endpoints[pool] ?? PoolEndpoints() }
    }

    /// Pids of the accepting workers of every pool.
    public var workerPIDs: [Int32] {
        condition.withLock { endpoints.values.flatMap(\.pids) }
    }

    private func enqueue(_ command: Command) {
        condition.withLock { commands.append(command) }
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    // MARK: The loop (supervisor thread only)

    private func runLoop() {
        let now = MonotonicInstant.now()
        for index in pools.indices {
            let actions = pools[index].machine.start(now: now)
            perform(actions, pool: index)
        }
        while !allStopped {
            waitForActivity()
            let now = MonotonicInstant.now()
            for command in condition.withLock({ defer { commands.removeAll() }; return commands }) {
                handle(command, now: now)
            }
            readControlChannels(now: MonotonicInstant.now())
            reap(now: MonotonicInstant.now())
            let tickTime = MonotonicInstant.now()
            for index in pools.indices {
                perform(pools[index].machine.tick(now: tickTime), pool: index)
            }
        }
        condition.withLock {
            finished = true
            condition.broadcast()
        }
    }

    private var allStopped: Bool {
        pools.allSatisfy { $0.machine.phase == .stopped }
    }

    private func waitForActivity() {
        var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        for child in children.values {
            if let control = child.control { fds.append(pollfd(fd: control, events: Int16(POLLIN), revents: 0)) }
        }
        var timeout = 1.0
        let now = MonotonicInstant.now()
        for pool in pools {
            if let deadline = pool.machine.nextDeadline { timeout = min(timeout, max(0, deadline - now)) }
        }
        if children.values.contains(where: \.channelClosed) { timeout = min(timeout, 0.02) }
        _ = poll(&fds, nfds_t(fds.count), Int32((timeout * 1000).rounded(.up)))
        var drain = [UInt8](repeating: 0, count: 256)
        while read(wakeRead, &drain, drain.count) > 0 {}
    }

    private func handle(_ command: Command, now: MonotonicInstant) {
        switch command {
        case .reload:
            for index in pools.indices { perform(pools[index].machine.reload(now: now), pool: index) }
        case .reconfigure(let configurations):
            reconfigure(configurations, now: now)
        case .changeWorkerCount(let name, let delta):
            for index in pools.indices where name == nil || pools[index].configuration.name == name {
                let count = pools[index].machine.desiredWorkers + delta
                perform(pools[index].machine.setWorkerCount(count, now: now), pool: index)
            }
        case .stop(let graceful):
            for index in pools.indices { perform(pools[index].machine.stop(graceful: graceful, now: now), pool: index) }
        case .childExited:
            break  // reap() runs every iteration
        case .signalWorkers(let number):
            for (id, child) in children { deliver(number, to: child.pid, id: id) }
        }
    }

    private func reconfigure(_ configurations: [PoolConfiguration], now: MonotonicInstant) {
        let wanted = Set(configurations.map(\.name))
        for index in pools.indices where !wanted.contains(pools[index].configuration.name) {
            log(.info, "Pool \(pools[index].configuration.name) is no longer configured: stopping it")
            perform(pools[index].machine.stop(graceful: true, now: now), pool: index)
        }
        for configuration in configurations {
            if let index = pools.firstIndex(where: { $0.configuration.name == configuration.name && $0.machine.phase != .stopped }) {
                pools[index].configuration = configuration
                pools[index].machine.update(policy: configuration.policy, workers: configuration.workers)
                perform(pools[index].machine.reload(now: now), pool: index)
            } else {
                let firstNumber = (pools.count + 1) * 1_000_000 + 1
                pools.append(Pool(configuration: configuration,
                                  machine: PoolStateMachine(name: configuration.name, workers: configuration.workers,
                                                            policy: configuration.policy, firstWorkerNumber: firstNumber)))
                perform(pools[pools.count - 1].machine.start(now: now), pool: pools.count - 1)
            }
        }
    }

    private func readControlChannels(now: MonotonicInstant) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        for id in children.keys.sorted() {
            guard var child = children[id], let control = child.control else { continue }
            var messages: [String] = []
            while true {
                let count = read(control, &buffer, buffer.count)
                if count > 0 {
                    messages += child.lines.append(buffer[0..<count])
                    continue
                }
                if count == 0 || (errno != EAGAIN && errno != EINTR) {
                    close(control)
                    child.control = nil
                    child.channelClosed = true
                }
                if count < 0 && errno == EINTR { continue }
                break
            }
            children[id] = child
            for line in messages {
                guard let message = WorkerControlMessage(rawValue: line) else {
                    logger.debug("Worker (pid:\(child.pid)) sent an unknown control line: \(line)")
                    continue
                }
                perform(pools[child.pool].machine.received(message, from: id, now: now), pool: child.pool)
            }
        }
    }

    private func reap(now: MonotonicInstant) {
        if spawner != nil { reapAdopted(now: now) }
        for id in children.keys.sorted() {
            guard let child = children[id] else { continue }
            var status: Int32 = 0
            let result = waitpid(child.pid, &status, WNOHANG)
            let exit: WorkerExit
            if result == child.pid {
                exit = WorkerExit(waitStatus: status)
            } else if result < 0 && errno == ECHILD {
                exit = .exited(code: WorkerExitCode.failure.rawValue)  // reaped elsewhere: treat as gone
            } else {
                continue
            }
            finish(id, exit, now: now)
        }
    }

    private func finish(_ id: WorkerID, _ exit: WorkerExit, now: MonotonicInstant) {
        guard let child = children.removeValue(forKey: id) else { return }
        if let control = child.control { close(control) }
        let configuration = pools[child.pool].configuration
        if let path = configuration.socketPath(for: id) { unlink(path) }
        perform(pools[child.pool].machine.exited(id, exit, now: now), pool: child.pool)
    }

    /// With a spawner this process is a child subreaper: besides its workers it adopts whatever
    /// they leave behind (an app's daemonized subprocess). Any exited child is reaped here, so
    /// none stays a zombie; a worker's exit goes to its pool as usual.
    private func reapAdopted(now: MonotonicInstant) {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            if let id = children.first(where: { $0.value.pid == pid })?.key {
                finish(id, WorkerExit(waitStatus: status), now: now)
            } else {
                logger.debug("reaped adopted process \(pid)")
            }
        }
    }

    /// Carries out a state machine's decisions; spawning feeds events back.
    private func perform(_ actions: [PoolAction], pool index: Int) {
        var queue = actions[...]
        var endpointsChanged = false
        // Graceful stops wait until the new endpoints are published, so the front has stopped
        // routing to a worker before it stops accepting (no request meets a closed socket).
        var gracefulStops: [(WorkerID, Int32)] = []
        while let action = queue.popFirst() {
            switch action {
            case .spawn(let id, _):
                queue.append(contentsOf: spawn(id, pool: index))
            case .signal(let id, let pid, .graceful):
                gracefulStops.append((id, pid))
            case .signal(let id, let pid, let signal):
                let number: Int32 = signal == .kill ? SIGKILL : SIGTERM
                if children[id] != nil { deliver(number, to: pid, id: id) }
            case .log(let severity, let message):
                log(severity, message)
            case .generationServing:
                endpointsChanged = true
            case .membershipChanged:
                endpointsChanged = true
            case .failed(let failure):
                logger.critical("\(failure)")
                condition.withLock {
                    if self.failure == nil { self.failure = failure }
                }
                // One pool failing stops the master, as gunicorn halts on a boot error.
                for other in pools.indices where other != index {
                    perform(pools[other].machine.stop(graceful: false, now: MonotonicInstant.now()), pool: other)
                }
            case .stopped:
                endpointsChanged = true
            }
        }
        if endpointsChanged { publishEndpoints(pool: index) }
        for (id, pid) in gracefulStops where children[id] != nil { deliver(SIGQUIT, to: pid, id: id) }
    }

    /// The master may not signal a worker running as another user; its spawner (root) may.
    private func deliver(_ signal: Int32, to pid: pid_t, id: WorkerID) {
        if children[id]?.viaSpawner == true, let spawner {
            spawner.signal(pid, signal)
        } else {
            kill(pid, signal)
        }
    }

    private func spawn(_ id: WorkerID, pool index: Int) -> [PoolAction] {
        let configuration = pools[index].configuration
        let limit = configuration.maxRequests.limit(using: &random)
        let arguments = WorkerLauncher.arguments(for: configuration, id: id, maxRequests: limit)
        var shared: [Int32] = []
        if case .shared(let fds) = configuration.sockets { shared = fds }
        if let path = configuration.socketPath(for: id) { unlink(path) }
        let now = MonotonicInstant.now()
        do {
            let launched: WorkerLauncher.Launched
            if let credentials = configuration.credentials {
                guard let spawner else { throw SystemError("no privileged spawner for pool \"\(configuration.name)\"", EPERM) }
                launched = try spawner.launch(executable: configuration.executable, arguments: arguments, sharedFDs: shared,
                                              credentials: credentials, standardError: configuration.standardErrorFD,
                                              unlinkFirst: configuration.socketPath(for: id))
            } else {
                launched = try WorkerLauncher.launch(executable: configuration.executable, arguments: arguments, sharedFDs: shared)
            }
            children[id] = Child(pool: index, id: id, pid: launched.pid, control: launched.control,
                                 viaSpawner: configuration.credentials != nil)
            logger.debug("Spawned worker pid \(launched.pid) (\(configuration.name) \(id))")
            return pools[index].machine.spawned(id, pid: launched.pid, now: now)
        } catch {
            return pools[index].machine.spawnFailed(id, reason: "\(error)", now: now)
        }
    }

    private func publishEndpoints(pool index: Int) {
        let pool = pools[index]
        let accepting = pool.machine.acceptingWorkers
        let current = PoolEndpoints(
            generation: pool.machine.servingGeneration,
            socketPaths: accepting.compactMap { pool.configuration.socketPath(for: $0.id) },
            pids: accepting.compactMap(\.pid)
        )
        let handler: (@Sendable (String, PoolEndpoints) -> Void)? = condition.withLock {
            // Published before start() is released, so its caller sees the ready workers.
            if current.generation > 0 { servingPools.insert(pool.configuration.name) }
            guard endpoints[pool.configuration.name] != current else { return nil }
            endpoints[pool.configuration.name] = current
            condition.broadcast()
            return changeHandler
        }
        handler?(pool.configuration.name, current)
    }

    private func log(_ severity: LogSeverity, _ message: String) {
        switch severity {
        case .debug: logger.debug("\(message)")
        case .info: logger.info("\(message)")
        case .warning: logger.warning("\(message)")
        case .error: logger.error("\(message)")
        case .critical: logger.critical("\(message)")
        }
    }
}
