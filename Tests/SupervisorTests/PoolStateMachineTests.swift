import Testing
@testable import Supervisor

/// Drives a pool state machine like the supervisor does, with fake pids and a fake clock.
private struct Harness {
    var machine: PoolStateMachine
    var now = MonotonicInstant(seconds: 1000)
    var nextPid: Int32 = 100
    var log: [PoolAction] = []

    init(workers: Int, policy: PoolPolicy = PoolPolicy(timeout: 30, gracefulTimeout: 30)) {
        machine = PoolStateMachine(name: "app", workers: workers, policy: policy)
    }

    /// Applies actions, answering every spawn with a pid as the driver does; returns all actions seen.
    @discardableResult
    mutating func apply(_ actions: [PoolAction]) -> [PoolAction] {
        var seen: [PoolAction] = []
        var queue = actions[...]
        while let action = queue.popFirst() {
            seen.append(action)
            if case .spawn(let id, _) = action {
                nextPid += 1
                queue.append(contentsOf: machine.spawned(id, pid: nextPid, now: now))
            }
        }
        log += seen
        return seen
    }

    mutating func advance(_ seconds: Double) -> [PoolAction] {
        now = now + seconds
        return apply(machine.tick(now: now))
    }

    func ids(in state: WorkerState, generation: Int? = nil) -> [WorkerID] {
        machine.workers.values
            .filter { $0.state == state && (generation == nil || $0.generation == generation) }
            .map(\.id).sorted()
    }

    func booting() -> [WorkerID] { ids(in: .booting) }

    func pid(_ id: WorkerID) -> Int32 { machine.workers[id]!.pid! }

    mutating func ready(_ ids: [WorkerID]) -> [PoolAction] {
        var seen: [PoolAction] = []
        for id in ids { seen += apply(machine.received(.ready, from: id, now: now)) }
        return seen
    }

    mutating func exit(_ id: WorkerID, _ exit: WorkerExit) -> [PoolAction] {
        apply(machine.exited(id, exit, now: now))
    }

    /// Reaps every worker that was signalled to stop (as the kernel would, once it exits).
    mutating func reapStopped() -> [PoolAction] {
        var seen: [PoolAction] = []
        for worker in machine.workers.values.sorted(by: { $0.id < $1.id }) where worker.state.isLeaving {
            seen += exit(worker.id, .exited(code: 0))
        }
        return seen
    }

    /// Starts and readies every worker.
    mutating func startServing() {
        apply(machine.start(now: now))
        _ = ready(booting())
    }
}

private func spawns(_ actions: [PoolAction]) -> Int {
    actions.filter { if case .spawn = $0 { true } else { false } }.count
}

private func signals(_ actions: [PoolAction], _ kind: WorkerSignal) -> [Int32] {
    actions.compactMap { if case .signal(_, let pid, kind) = $0 { pid } else { nil } }
}

private func failure(_ actions: [PoolAction]) -> PoolFailure? {
    actions.lazy.compactMap { if case .failed(let failure) = $0 { failure } else { nil } }.first
}

@Suite("Pool start-up")
struct StartupTests {
    @Test func startSpawnsEveryWorkerAndIsServingOnlyWhenAllAreReady() {
        var pool = Harness(workers: 3)
        let actions = pool.apply(pool.machine.start(now: pool.now))
        #expect(spawns(actions) == 3)
        #expect(pool.machine.phase == .starting)

        let ids = pool.booting()
        _ = pool.ready(Array(ids.prefix(2)))
        #expect(pool.machine.phase == .starting)
        #expect(!pool.log.contains(.generationServing(1)))

        let last = pool.ready([ids[2]])
        #expect(last.contains(.generationServing(1)))
        #expect(pool.machine.phase == .running)
        #expect(pool.machine.acceptingWorkers.count == 3)
    }

    @Test func anImportErrorFailsStartUpAtOnceWithoutRestarting() {
        var pool = Harness(workers: 2)
        pool.apply(pool.machine.start(now: pool.now))
        let ids = pool.booting()
        let actions = pool.exit(ids[0], .exited(code: WorkerExitCode.importError.rawValue))

        let failed = failure(actions)
        #expect(failed?.exit == .exited(code: 11))
        #expect(failed?.description.contains("could not be imported") == true)
        #expect(spawns(actions) == 0)
        // The sibling is stopped fast, and the pool is stopped once it is reaped.
        #expect(signals(actions, .fast) == [pool.pid(ids[1])])
        let end = pool.exit(ids[1], .exited(code: 0))
        #expect(end.contains(.stopped))
        #expect(pool.machine.phase == .stopped)
    }

    @Test func aWorkerThatKeepsDyingIsRetriedWithGrowingBackoffThenGivenUp() {
        var pool = Harness(workers: 1, policy: PoolPolicy(timeout: 30, minimumUptime: 1, maximumEarlyDeaths: 4, initialBackoff: 0.1))
        pool.apply(pool.machine.start(now: pool.now))
        var delays: [Double] = []
        for _ in 0..<3 {
            let id = pool.booting()[0]
            let actions = pool.exit(id, .exited(code: 1))
            #expect(spawns(actions) == 0, "no respawn before the back-off expires")
            let notBefore = pool.machine.spawnNotBefore!
            delays.append(notBefore - pool.now)
            #expect(spawns(pool.advance(notBefore - pool.now - 0.01)) == 0)
            #expect(spawns(pool.advance(0.02)) == 1)
        }
        #expect(delays.count == 3)
        #expect(abs(delays[0] - 0.1) < 1e-9 && abs(delays[1] - 0.2) < 1e-9 && abs(delays[2] - 0.4) < 1e-9)

        let last = pool.exit(pool.booting()[0], .exited(code: 1))
        let failed = failure(last)
        #expect(failed?.reason.contains("keeps dying") == true)
        #expect(pool.machine.phase == .stopped)
    }

    @Test func aWorkerThatNeverGetsReadyIsKilledAtTheBootTimeout() {
        var pool = Harness(workers: 1, policy: PoolPolicy(timeout: 5, bootTimeout: 10))
        pool.apply(pool.machine.start(now: pool.now))
        let id = pool.booting()[0]
        #expect(pool.machine.nextDeadline == pool.now + 10)
        #expect(signals(pool.advance(9), .kill).isEmpty)
        let actions = pool.advance(2)
        #expect(signals(actions, .kill) == [pool.pid(id)])
        #expect(pool.machine.earlyDeaths == 1)
    }
}

@Suite("Running pool")
struct RunningTests {
    @Test func aKilledWorkerIsReplacedAtOnce() {
        var pool = Harness(workers: 2)
        pool.startServing()
        pool.now = pool.now + 60
        let victim = pool.machine.acceptingWorkers[0].id
        let actions = pool.exit(victim, .signaled(signal: 9))
        #expect(spawns(actions) == 1)
        #expect(actions.contains(.membershipChanged))
        #expect(actions.contains(.log(.error, "Worker (pid:101) was sent SIGKILL! Perhaps out of memory?")))
        #expect(pool.machine.earlyDeaths == 0)
    }

    @Test func aRequestTimeoutExitIsReplacedWithoutBackoff() {
        var pool = Harness(workers: 1)
        pool.startServing()
        let id = pool.machine.acceptingWorkers[0].id
        let actions = pool.exit(id, .exited(code: WorkerExitCode.requestTimeout.rawValue))
        #expect(spawns(actions) == 1)
        #expect(pool.machine.spawnNotBefore == nil)
    }

    @Test func aSilentWorkerIsKilledWhenItsHeartbeatStops() {
        var pool = Harness(workers: 1, policy: PoolPolicy(timeout: 10))
        pool.startServing()
        let id = pool.machine.acceptingWorkers[0].id
        #expect(signals(pool.advance(6), .kill).isEmpty)
        pool.apply(pool.machine.received(.heartbeat, from: id, now: pool.now))
        #expect(signals(pool.advance(6), .kill).isEmpty, "the heartbeat reset the clock")
        let actions = pool.advance(5)
        #expect(signals(actions, .kill) == [pool.pid(id)])
        #expect(spawns(actions) == 1, "its replacement boots at once")
        #expect(pool.machine.workers[id]?.state == .killed)
    }

    @Test func recyclingStartsTheReplacementAndQuitsTheOldWorkerOnlyWhenTheNewOneIsReady() {
        var pool = Harness(workers: 2)
        pool.startServing()
        let old = pool.machine.acceptingWorkers[0].id
        let oldPid = pool.pid(old)

        let recycle = pool.apply(pool.machine.received(.recycle, from: old, now: pool.now))
        #expect(spawns(recycle) == 1)
        #expect(signals(recycle, .graceful).isEmpty)
        #expect(pool.machine.workers[old]?.state == .retiring)
        #expect(pool.machine.acceptingWorkers.count == 2, "the retiring worker still serves")

        let replacement = pool.booting()
        let ready = pool.ready(replacement)
        #expect(signals(ready, .graceful) == [oldPid])
        #expect(pool.machine.acceptingWorkers.map(\.id).contains(replacement[0]))
        #expect(!pool.machine.acceptingWorkers.map(\.id).contains(old))
        #expect(spawns(pool.reapStopped()) == 0)
        #expect(pool.machine.workers.count == 2)
    }

    @Test func ttinAndTtouChangeTheCountRetiringTheOldestGracefully() {
        var pool = Harness(workers: 2)
        pool.startServing()
        #expect(spawns(pool.apply(pool.machine.setWorkerCount(3, now: pool.now))) == 1)
        _ = pool.ready(pool.booting())
        #expect(pool.machine.acceptingWorkers.count == 3)

        let oldest = pool.machine.acceptingWorkers[0]
        let down = pool.apply(pool.machine.setWorkerCount(2, now: pool.now))
        #expect(signals(down, .graceful) == [oldest.pid!])
        #expect(pool.machine.acceptingWorkers.count == 2)
        #expect(spawns(pool.reapStopped()) == 0)

        _ = pool.apply(pool.machine.setWorkerCount(0, now: pool.now))
        #expect(pool.machine.desiredWorkers == 1, "never below one worker")
    }

    @Test func scalingDownStopsABootingWorkerFirstAndFast() {
        var pool = Harness(workers: 2)
        pool.startServing()
        pool.apply(pool.machine.setWorkerCount(3, now: pool.now))
        let booting = pool.booting()
        let down = pool.apply(pool.machine.setWorkerCount(2, now: pool.now))
        #expect(signals(down, .fast) == [pool.pid(booting[0])])
        #expect(signals(down, .graceful).isEmpty)
        #expect(pool.machine.acceptingWorkers.count == 2)
    }
}

@Suite("Reload")
struct ReloadTests {
    @Test func newGenerationIsReadyBeforeTheOldOneGetsQuit() {
        var pool = Harness(workers: 2)
        pool.startServing()
        let oldPids = pool.machine.acceptingWorkers.map { $0.pid! }

        let reload = pool.apply(pool.machine.reload(now: pool.now))
        #expect(spawns(reload) == 2)
        #expect(signals(reload, .graceful).isEmpty)
        #expect(pool.machine.isReloading)
        #expect(pool.machine.acceptingWorkers.map { $0.pid! } == oldPids, "the front keeps the old generation")

        let fresh = pool.ids(in: .booting, generation: 2)
        #expect(signals(pool.ready([fresh[0]]), .graceful).isEmpty, "half a generation is not enough")
        let switched = pool.ready([fresh[1]])
        #expect(Set(signals(switched, .graceful)) == Set(oldPids))
        #expect(switched.contains(.generationServing(2)))
        #expect(pool.machine.servingGeneration == 2)
        #expect(pool.machine.acceptingWorkers.map(\.id) == fresh)
        #expect(spawns(pool.reapStopped()) == 0)
    }

    @Test func aReloadWhoseCodeDoesNotImportKeepsTheOldGenerationServing() {
        var pool = Harness(workers: 2)
        pool.startServing()
        let oldIds = pool.machine.acceptingWorkers.map(\.id)
        pool.apply(pool.machine.reload(now: pool.now))
        let fresh = pool.ids(in: .booting, generation: 2)

        let actions = pool.exit(fresh[0], .exited(code: WorkerExitCode.importError.rawValue))
        #expect(failure(actions) == nil)
        #expect(signals(actions, .fast) == [pool.pid(fresh[1])])
        #expect(pool.machine.phase == .running)
        #expect(pool.machine.servingGeneration == 1)
        #expect(!pool.machine.isReloading)
        #expect(pool.machine.acceptingWorkers.map(\.id) == oldIds)
        #expect(spawns(pool.reapStopped()) == 0)
    }

    @Test func aSecondReloadSupersedesAHalfBootedGeneration() {
        var pool = Harness(workers: 1)
        pool.startServing()
        pool.apply(pool.machine.reload(now: pool.now))
        let second = pool.ids(in: .booting, generation: 2)
        let again = pool.apply(pool.machine.reload(now: pool.now))
        #expect(signals(again, .fast) == [pool.pid(second[0])])
        _ = pool.ready(pool.ids(in: .booting, generation: 3))
        #expect(pool.machine.servingGeneration == 3)
    }
}

@Suite("Stopping")
struct StopTests {
    @Test func gracefulStopQuitsEveryWorkerThenKillsLateOnes() {
        var pool = Harness(workers: 2, policy: PoolPolicy(timeout: 30, gracefulTimeout: 5))
        pool.startServing()
        let pids = pool.machine.acceptingWorkers.map { $0.pid! }
        let stop = pool.apply(pool.machine.stop(graceful: true, now: pool.now))
        #expect(Set(signals(stop, .graceful)) == Set(pids))
        #expect(pool.machine.acceptingWorkers.isEmpty)

        let first = pool.machine.workers.keys.sorted()[0]
        #expect(!pool.exit(first, .exited(code: 0)).contains(.stopped))
        let late = pool.advance(6)
        #expect(signals(late, .kill) == [pids[1]])
        #expect(spawns(late) == 0)
        let end = pool.reapStopped()
        #expect(end.contains(.stopped))
    }

    @Test func aFastStopAfterAGracefulOneSendsTerm() {
        var pool = Harness(workers: 1)
        pool.startServing()
        let pid = pool.machine.acceptingWorkers[0].pid!
        pool.apply(pool.machine.stop(graceful: true, now: pool.now))
        #expect(signals(pool.apply(pool.machine.stop(graceful: false, now: pool.now)), .fast) == [pid])
        #expect(pool.apply(pool.machine.stop(graceful: true, now: pool.now)).isEmpty)
    }

    @Test func workersExitingDuringAStopAreNotReplaced() {
        var pool = Harness(workers: 2)
        pool.startServing()
        pool.apply(pool.machine.stop(graceful: false, now: pool.now))
        let actions = pool.reapStopped()
        #expect(spawns(actions) == 0)
        #expect(pool.machine.phase == .stopped)
    }
}

@Suite("Pieces")
struct PieceTests {
    @Test func waitStatusDecoding() {
        #expect(WorkerExit(waitStatus: 11 << 8) == .exited(code: 11))
        #expect(WorkerExit(waitStatus: 9) == .signaled(signal: 9))
        #expect(WorkerExit(waitStatus: 11 << 8).isPermanent)
        #expect(!WorkerExit(waitStatus: 1 << 8).isPermanent)
    }

    @Test func lineBufferSplitsAcrossReadsAndDropsHugeLines() {
        var buffer = LineBuffer(maximumLineLength: 8)
        #expect(buffer.append(Array("rea".utf8)) == [])
        #expect(buffer.append(Array("dy\r\nheartbeat\n".utf8)) == ["ready"])
        #expect(buffer.append(Array("recycle\n".utf8)) == ["recycle"])
        #expect(buffer.append(Array("0123456789abcdef\nready\n".utf8)) == ["ready"])
    }

    @Test func maxRequestsJitterStaysInRange() {
        var generator = SystemRandomNumberGenerator()
        let policy = MaxRequestsPolicy(maxRequests: 100, jitter: 10)
        for _ in 0..<50 {
            let limit = policy.limit(using: &generator)!
            #expect((100...110).contains(limit))
        }
        #expect(MaxRequestsPolicy(maxRequests: 0, jitter: 5).limit(using: &generator) == nil)
    }

    @Test func bindAddressesAsGunicornReadsThem() throws {
        #expect(try BindAddress(parsing: "127.0.0.1:8000") == .tcp(host: "127.0.0.1", port: 8000))
        #expect(try BindAddress(parsing: ":9000") == .tcp(host: "0.0.0.0", port: 9000))
        #expect(try BindAddress(parsing: "[::1]:80") == .tcp(host: "::1", port: 80))
        #expect(try BindAddress(parsing: "localhost") == .tcp(host: "localhost", port: 8000))
        #expect(try BindAddress(parsing: "unix:/run/app.sock") == .unix(path: "/run/app.sock"))
        #expect(try BindAddress(parsing: "fd://5") == .fileDescriptor(5))
        #expect(throws: BindAddress.ParseError.self) { try BindAddress(parsing: "host:port") }
    }

    @Test func workerArgumentsCarryTheControlChannelSocketsAndLimit() {
        let shared = PoolConfiguration(name: "app", workers: 1, arguments: ["worker", "app:application"], sockets: .shared([7, 9]))
        #expect(WorkerLauncher.arguments(for: shared, id: WorkerID(3), maxRequests: 50) ==
            ["worker", "app:application", "--control-fd", "3", "--listen-fd", "4", "--listen-fd", "5", "--max-requests", "50"])
        let own = PoolConfiguration(name: "shop", workers: 1, arguments: ["worker", "a:b"], sockets: .perWorker(directory: "/run/gantry/"))
        #expect(WorkerLauncher.arguments(for: own, id: WorkerID(3), maxRequests: nil) ==
            ["worker", "a:b", "--control-fd", "3", "--bind", "unix:/run/gantry/shop.3.sock"])
    }
}
