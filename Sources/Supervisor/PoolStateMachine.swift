/// What a pool asks its driver to do. The state machine decides; the driver
/// (``Supervisor``) spawns processes and sends signals.
public enum PoolAction: Equatable, Sendable {
    /// Start a worker process for `generation`; report its pid with ``PoolStateMachine/spawned(_:pid:now:)``.
    case spawn(WorkerID, generation: Int)
    case signal(WorkerID, pid: Int32, WorkerSignal)
    case log(LogSeverity, String)
    /// Every worker of `generation` is ready and it now takes the traffic (start-up done, or a reload switched over).
    case generationServing(Int)
    /// The set of accepting workers changed (the front re-reads the pool's endpoints).
    case membershipChanged
    /// The pool gave up: remaining workers are being stopped.
    case failed(PoolFailure)
    /// Every worker is gone after a stop or a failure.
    case stopped
}

/// The three signals a master sends a worker.
public enum WorkerSignal: Equatable, Sendable {
    /// `SIGQUIT`: stop accepting, finish in-flight requests, exit.
    case graceful
    /// `SIGTERM`: exit now.
    case fast
    /// `SIGKILL`.
    case kill
}

public enum LogSeverity: Equatable, Sendable {
    case debug, info, warning, error, critical
}

/// Why a pool gave up, worded for the user.
public struct PoolFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var pool: String
    public var reason: String
    /// The worker's exit, when one caused the failure.
    public var exit: WorkerExit?

    public init(pool: String, reason: String, exit: WorkerExit? = nil) {
        self.pool = pool
        self.reason = reason
        self.exit = exit
    }

    public var description: String { "app pool \"\(pool)\": \(reason)" }
}

/// The lifecycle of one pool of identical workers, free of processes and clocks,
/// like gunicorn's arbiter loop (spawn, reap, murder, manage) made explicit.
///
/// Generations: start-up runs generation 1. A reload raises `targetGeneration`;
/// its workers boot beside the serving ones, and only when all of them are ready
/// does `servingGeneration` move and the old workers get `SIGQUIT`. If the new
/// generation cannot start (the new code does not import), the reload is dropped
/// and the old generation keeps serving.
public struct PoolStateMachine: Sendable {
    public enum Phase: Equatable, Sendable {
        case idle
        /// Generation 1 is booting; ``PoolAction/generationServing(_:)`` ends it.
        case starting
        case running
        case stopping(graceful: Bool)
        case stopped
    }

    public let name: String
    public private(set) var policy: PoolPolicy
    public private(set) var phase: Phase = .idle
    public private(set) var desiredWorkers: Int
    /// Generation whose workers take traffic (0 before start-up completes).
    public private(set) var servingGeneration = 0
    /// Generation new workers are spawned for.
    public private(set) var targetGeneration = 0
    public private(set) var workers: [WorkerID: WorkerRecord] = [:]
    /// Consecutive workers that died at once; reset by one that lived long enough.
    public private(set) var earlyDeaths = 0
    /// No spawn before this instant (back-off after early deaths).
    public private(set) var spawnNotBefore: MonotonicInstant?
    public private(set) var failure: PoolFailure?
    private var nextWorkerNumber: Int

    /// - Parameter firstWorkerNumber: lets several pools in one master share one `WorkerID` space.
    public init(name: String, workers: Int, policy: PoolPolicy, firstWorkerNumber: Int = 1) {
        self.name = name
        self.desiredWorkers = max(1, workers)
        self.policy = policy
        self.nextWorkerNumber = firstWorkerNumber
    }

    // MARK: Queries

    /// Workers the front may route to: the serving generation's accepting workers.
    public var acceptingWorkers: [WorkerRecord] {
        workers.values.filter { $0.generation == servingGeneration && $0.state.isAccepting }.sorted { $0.id < $1.id }
    }

    public var isReloading: Bool {
        servingGeneration != 0 && targetGeneration != servingGeneration
    }

    /// The next instant at which ``tick(now:)`` has something to do.
    public var nextDeadline: MonotonicInstant? {
        var deadline: MonotonicInstant? = nil
        func consider(_ instant: MonotonicInstant) {
            if deadline == nil || instant < deadline! { deadline = instant }
        }
        for worker in workers.values {
            switch worker.state {
            case .booting where policy.bootTimeout > 0:
                consider(worker.spawnedAt + policy.bootTimeout)
            case .serving where policy.timeout > 0, .retiring where policy.timeout > 0:
                consider(worker.lastHeard + policy.timeout)
            case .stopping(_, let killAt):
                consider(killAt)
            default:
                break
            }
        }
        if let spawnNotBefore, phase == .starting || phase == .running, liveTargetWorkers.count < desiredWorkers {
            consider(spawnNotBefore)
        }
        return deadline
    }

    // MARK: Commands

    public mutating func start(now: MonotonicInstant) -> [PoolAction] {
        guard phase == .idle else { return [] }
        phase = .starting
        targetGeneration = 1
        return reconcile(now: now)
    }

    /// `HUP`: boot a new generation (new processes, so new app code), then retire the old one.
    public mutating func reload(now: MonotonicInstant) -> [PoolAction] {
        guard phase == .running else { return [] }
        var actions: [PoolAction] = []
        // A reload during a reload supersedes it: the half-booted generation is useless.
        for worker in workers.values where worker.generation == targetGeneration && targetGeneration != servingGeneration {
            actions += stopWorker(worker.id, graceful: false, now: now)
        }
        targetGeneration += 1
        earlyDeaths = 0
        spawnNotBefore = nil
        actions.append(.log(.info, "Reloading pool \(name): booting generation \(targetGeneration)"))
        return actions + reconcile(now: now)
    }

    /// New settings from a re-read config; they apply from the next ``reload(now:)`` on
    /// (timeouts of running workers change at once).
    public mutating func update(policy: PoolPolicy, workers: Int) {
        self.policy = policy
        desiredWorkers = max(1, workers)
    }

    /// `TTIN` / `TTOU`: change the worker count (at least one).
    public mutating func setWorkerCount(_ count: Int, now: MonotonicInstant) -> [PoolAction] {
        desiredWorkers = max(1, count)
        guard phase == .starting || phase == .running else { return [] }
        return reconcile(now: now)
    }

    /// `QUIT` (graceful) or `TERM`/`INT` (fast). A fast stop may follow a graceful one.
    public mutating func stop(graceful: Bool, now: MonotonicInstant) -> [PoolAction] {
        switch phase {
        case .stopped:
            return []
        case .stopping(let wasGraceful) where graceful || !wasGraceful:
            return []
        default:
            break
        }
        phase = .stopping(graceful: graceful)
        var actions: [PoolAction] = []
        for id in workers.keys.sorted() {
            guard let worker = workers[id] else { continue }
            switch worker.state {
            case .killed:
                continue
            case .stopping(let wasGraceful, _) where graceful || !wasGraceful:
                continue
            default:
                // A booting worker has no requests to finish.
                actions += stopWorker(id, graceful: graceful && worker.state != .booting, now: now)
            }
        }
        if actions.contains(where: { if case .signal = $0 { return true } else { return false } }) {
            actions.append(.membershipChanged)
        }
        return actions + finishStopIfEmpty()
    }

    // MARK: Events from the driver

    public mutating func spawned(_ id: WorkerID, pid: Int32, now: MonotonicInstant) -> [PoolAction] {
        guard var worker = workers[id], worker.state == .spawning else { return [] }
        worker.pid = pid
        worker.state = .booting
        worker.lastHeard = now
        workers[id] = worker
        // A stop may have come while the spawn was in flight.
        if case .stopping(let graceful) = phase {
            return stopWorker(id, graceful: graceful, now: now)
        }
        return []
    }

    /// `posix_spawn` itself failed: nothing can run, whatever the phase.
    public mutating func spawnFailed(_ id: WorkerID, reason: String, now: MonotonicInstant) -> [PoolAction] {
        guard workers.removeValue(forKey: id) != nil else { return [] }
        return fail(PoolFailure(pool: name, reason: "cannot start a worker: \(reason)"), now: now)
    }

    public mutating func received(_ message: WorkerControlMessage, from id: WorkerID, now: MonotonicInstant) -> [PoolAction] {
        guard var worker = workers[id] else { return [] }
        worker.lastHeard = now
        var actions: [PoolAction] = []
        switch message {
        case .heartbeat:
            workers[id] = worker
            return []
        case .ready:
            guard worker.state == .booting else {
                workers[id] = worker
                return []
            }
            worker.state = .serving
            worker.readyAt = now
            workers[id] = worker
            actions.append(.log(.debug, "Worker (\(worker.label)) ready"))
            if worker.generation == servingGeneration { actions.append(.membershipChanged) }
        case .recycle:
            guard worker.state == .serving else {
                workers[id] = worker
                return []
            }
            worker.state = .retiring
            workers[id] = worker
            actions.append(.log(.info, "Worker (\(worker.label)) reached max requests: starting its replacement"))
        }
        return actions + reconcile(now: now)
    }

    /// The driver reaped the worker.
    public mutating func exited(_ id: WorkerID, _ exit: WorkerExit, now: MonotonicInstant) -> [PoolAction] {
        guard let worker = workers.removeValue(forKey: id) else { return [] }
        var actions: [PoolAction] = []
        if worker.generation == servingGeneration && worker.state.isAccepting {
            actions.append(.membershipChanged)
        }
        let uptime = now - worker.spawnedAt

        switch worker.state {
        case .stopping, .killed:
            actions.append(.log(.debug, "Worker (\(worker.label)) exited: \(exit)"))
            if case .stopping = phase { return actions + finishStopIfEmpty() }
            return actions + reconcile(now: now)

        case .spawning, .booting:
            if case .stopping = phase { return actions + finishStopIfEmpty() }
            if exit.isPermanent {
                let reason = "worker failed to boot: \(exit)"
                actions.append(.log(.error, "Worker (\(worker.label)) failed to boot: \(exit)"))
                if servingGeneration == 0 {
                    return actions + fail(PoolFailure(pool: name, reason: reason, exit: exit), now: now)
                }
                if worker.generation == targetGeneration && isReloading {
                    return actions + abandonReload(reason: reason, now: now)
                }
                // A replacement of serving code that no longer boots: back off, then give up.
            } else {
                actions.append(.log(.error, "Worker (\(worker.label)) exited before it was ready: \(exit)"))
            }
            return actions + recordEarlyDeath(exit, now: now)

        case .serving, .retiring:
            if case .stopping = phase { return actions + finishStopIfEmpty() }
            actions.append(.log(exit == .signaled(signal: 9) ? .error : .warning, describeUnexpectedExit(worker, exit)))
            if exit.contractCode == .requestTimeout || uptime >= policy.minimumUptime {
                earlyDeaths = 0
                spawnNotBefore = nil
                return actions + reconcile(now: now)
            }
            return actions + recordEarlyDeath(exit, now: now)
        }
    }

    /// Timeouts: boot, heartbeat backstop, `SIGKILL` after the graceful period; and back-off expiry.
    public mutating func tick(now: MonotonicInstant) -> [PoolAction] {
        var actions: [PoolAction] = []
        var bootTimeouts = 0
        for id in workers.keys.sorted() {
            guard var worker = workers[id], let pid = worker.pid else { continue }
            switch worker.state {
            case .booting where policy.bootTimeout > 0 && now - worker.spawnedAt > policy.bootTimeout:
                actions.append(.log(.critical, "WORKER TIMEOUT (\(worker.label)): not ready after \(formatSeconds(policy.bootTimeout))"))
                bootTimeouts += 1
            case .serving where policy.timeout > 0 && now - worker.lastHeard > policy.timeout,
                 .retiring where policy.timeout > 0 && now - worker.lastHeard > policy.timeout:
                actions.append(.log(.critical, "WORKER TIMEOUT (\(worker.label)): no heartbeat for \(formatSeconds(now - worker.lastHeard))"))
                if worker.generation == servingGeneration { actions.append(.membershipChanged) }
            case .stopping(_, let killAt) where now >= killAt:
                actions.append(.log(.warning, "Worker (\(worker.label)) did not stop in time: sending SIGKILL"))
            default:
                continue
            }
            worker.state = .killed
            workers[id] = worker
            actions.append(.signal(id, pid: pid, .kill))
        }
        // A worker that never gets ready is a failed boot: back off, and give up in the end.
        for _ in 0..<bootTimeouts where phase == .starting || phase == .running {
            actions += recordEarlyDeath("no ready after \(formatSeconds(policy.bootTimeout))", exit: nil, now: now)
        }
        if phase == .starting || phase == .running {
            actions += reconcile(now: now)
        }
        return actions
    }

    // MARK: Internals

    private var liveTargetWorkers: [WorkerRecord] {
        workers.values.filter { $0.generation == targetGeneration && $0.state.isLive }.sorted { $0.id < $1.id }
    }

    /// Converge on the desired shape: spawn missing workers, retire surplus ones,
    /// and switch generations (or release retiring workers) once the target is fully ready.
    private mutating func reconcile(now: MonotonicInstant) -> [PoolAction] {
        guard phase == .starting || phase == .running else { return [] }
        var actions: [PoolAction] = []
        var live = liveTargetWorkers

        if live.count < desiredWorkers {
            if let notBefore = spawnNotBefore, now < notBefore {
                // Backing off; tick() comes back at `notBefore`.
            } else {
                spawnNotBefore = nil
                for _ in live.count..<desiredWorkers {
                    let id = WorkerID(nextWorkerNumber)
                    nextWorkerNumber += 1
                    let worker = WorkerRecord(id: id, generation: targetGeneration, spawnedAt: now)
                    workers[id] = worker
                    live.append(worker)
                    actions.append(.spawn(id, generation: targetGeneration))
                }
            }
        } else if live.count > desiredWorkers {
            // Surplus (TTOU): booting ones are worth least, then the oldest, as gunicorn.
            let surplus = live.sorted { lhs, rhs in
                if (lhs.state == .booting) != (rhs.state == .booting) { return lhs.state == .booting }
                return lhs.id < rhs.id
            }.prefix(live.count - desiredWorkers)
            for worker in surplus {
                // A booting worker has no requests to finish: SIGTERM, not a graceful wait.
                actions += stopWorker(worker.id, graceful: worker.state != .booting, now: now)
                if worker.state.isAccepting && worker.generation == servingGeneration { actions.append(.membershipChanged) }
            }
            live = liveTargetWorkers
        }

        // Once the target generation is complete and ready, everything else may go.
        if live.count >= desiredWorkers && live.allSatisfy({ $0.state == .serving }) {
            let switching = targetGeneration != servingGeneration
            var released = false
            for id in workers.keys.sorted() {
                guard let worker = workers[id], !worker.state.isLeaving else { continue }
                if worker.generation != targetGeneration || worker.state == .retiring {
                    actions += stopWorker(id, graceful: true, now: now)
                    released = true
                }
            }
            if switching {
                let previous = servingGeneration
                servingGeneration = targetGeneration
                phase = .running
                earlyDeaths = 0
                if previous == 0 {
                    actions.append(.log(.info, "Pool \(name): \(live.count) worker(s) ready"))
                } else {
                    actions.append(.log(.info, "Pool \(name): generation \(targetGeneration) ready, generation \(previous) draining"))
                }
                actions.append(.generationServing(targetGeneration))
                actions.append(.membershipChanged)
            } else if released {
                actions.append(.membershipChanged)
            }
        }
        return actions
    }

    private mutating func stopWorker(_ id: WorkerID, graceful: Bool, now: MonotonicInstant) -> [PoolAction] {
        guard var worker = workers[id] else { return [] }
        guard let pid = worker.pid else {
            // Still spawning: spawned() will stop it.
            return []
        }
        worker.state = .stopping(graceful: graceful, deadline: now + policy.gracefulTimeout)
        workers[id] = worker
        return [.signal(id, pid: pid, graceful ? .graceful : .fast)]
    }

    private mutating func recordEarlyDeath(_ exit: WorkerExit, now: MonotonicInstant) -> [PoolAction] {
        recordEarlyDeath("\(exit)", exit: exit, now: now)
    }

    private mutating func recordEarlyDeath(_ cause: String, exit: WorkerExit?, now: MonotonicInstant) -> [PoolAction] {
        earlyDeaths += 1
        if earlyDeaths >= policy.maximumEarlyDeaths {
            let reason = "worker keeps dying: \(earlyDeaths) workers in a row failed within \(formatSeconds(policy.minimumUptime)) of starting or never got ready (last: \(cause))"
            if isReloading { return abandonReload(reason: reason, now: now) }
            return fail(PoolFailure(pool: name, reason: reason, exit: exit), now: now)
        }
        let delay = policy.backoff(afterEarlyDeaths: earlyDeaths)
        spawnNotBefore = now + delay
        return [.log(.info, "Pool \(name): restarting a worker in \(formatSeconds(delay))")] + reconcile(now: now)
    }

    /// The new generation cannot start: keep serving the old one.
    private mutating func abandonReload(reason: String, now: MonotonicInstant) -> [PoolAction] {
        var actions: [PoolAction] = [.log(.error, "Reload of pool \(name) failed (\(reason)); generation \(servingGeneration) keeps serving")]
        for id in workers.keys.sorted() where workers[id]?.generation == targetGeneration {
            if let worker = workers[id], !worker.state.isLeaving {
                actions += stopWorker(id, graceful: false, now: now)
            }
        }
        targetGeneration = servingGeneration
        earlyDeaths = 0
        spawnNotBefore = nil
        return actions + reconcile(now: now)
    }

    private mutating func fail(_ failure: PoolFailure, now: MonotonicInstant) -> [PoolAction] {
        guard self.failure == nil else { return [] }
        self.failure = failure
        var actions: [PoolAction] = [.failed(failure)]
        actions += stop(graceful: false, now: now)
        return actions
    }

    private mutating func finishStopIfEmpty() -> [PoolAction] {
        guard case .stopping = phase, workers.isEmpty else { return [] }
        phase = .stopped
        return [.stopped]
    }

    private func describeUnexpectedExit(_ worker: WorkerRecord, _ exit: WorkerExit) -> String {
        switch exit {
        case .signaled(let signal) where signal == 9:
            return "Worker (\(worker.label)) was sent SIGKILL! Perhaps out of memory?"
        case .exited(let code) where code == WorkerExitCode.requestTimeout.rawValue:
            return "Worker (\(worker.label)) answered a request stuck past the timeout with 504 and exited; replacing it"
        default:
            return "Worker (\(worker.label)) exited unexpectedly: \(exit)"
        }
    }
}

func formatSeconds(_ seconds: Double) -> String {
    if seconds == seconds.rounded() { return "\(Int(seconds))s" }
    return "\((seconds * 100).rounded() / 100)s"
}
