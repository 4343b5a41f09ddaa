#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Testing
@testable import Supervisor

/// The supervisor with real processes: a Python stand-in for `gantry worker` that
/// speaks the contract (Tests/SupervisorFixtures/fake_worker.py). The real worker is covered by Tests/e2e.
@Suite("Supervisor with real processes")
struct SupervisorProcessTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("SupervisorFixtures/fake_worker.py").path

    static let python: String = {
        for candidate in ["/usr/bin/python3", "/usr/local/bin/python3"] where access(candidate, X_OK) == 0 {
            return candidate
        }
        return "/usr/bin/python3"
    }()

    func pool(_ mode: String, workers: Int = 2, sockets: WorkerSockets = .shared([]),
              policy: PoolPolicy = PoolPolicy(timeout: 10, gracefulTimeout: 5)) -> PoolConfiguration {
        PoolConfiguration(name: "test", workers: workers, arguments: [Self.fixture, mode], sockets: sockets,
                          policy: policy, executable: Self.python)
    }

    func supervisor(_ configuration: PoolConfiguration) throws -> Supervisor {
        try Supervisor(pools: [configuration], logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    }

    /// Polls `condition` for up to `seconds` (bounded; no timing assertions).
    func eventually(_ seconds: Double = 15, _ condition: () -> Bool) -> Bool {
        let end = MonotonicInstant.now() + seconds
        while MonotonicInstant.now() < end {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

    @Test func workersGetTheSharedSocketsAndTheControlChannelAndNothingElse() throws {
        let listener = try ListeningSocket.bind(.tcp(host: "127.0.0.1", port: 0))
        defer { listener.close() }
        let supervisor = try supervisor(pool("check-fds", sockets: .shared([listener.fd])))
        try supervisor.start()
        let pids = supervisor.endpoints(of: "test").pids
        #expect(pids.count == 2)
        supervisor.stop(graceful: true)
        #expect(supervisor.waitUntilStopped() == nil)
        #expect(pids.allSatisfy { !isAlive($0) })
    }

    @Test func anImportErrorFailsStartWithTheWorkersExitCode() throws {
        let supervisor = try supervisor(pool("import-error"))
        #expect {
            try supervisor.start()
        } throws: { error in
            (error as? PoolFailure)?.exit == .exited(code: WorkerExitCode.importError.rawValue)
        }
        #expect(supervisor.isFinished)
    }

    @Test func aWorkerThatCrashesAtOnceIsGivenUpOn() throws {
        let policy = PoolPolicy(timeout: 10, gracefulTimeout: 5, maximumEarlyDeaths: 3, initialBackoff: 0.05)
        let supervisor = try supervisor(pool("crash", workers: 1, policy: policy))
        #expect {
            try supervisor.start()
        } throws: { error in
            (error as? PoolFailure)?.reason.contains("keeps dying") == true
        }
    }

    @Test func aKilledWorkerIsReplaced() throws {
        let supervisor = try supervisor(pool("serve"))
        try supervisor.start()
        let before = supervisor.endpoints(of: "test").pids
        let victim = before[0]
        kill(victim, SIGKILL)
        #expect(eventually {
            let now = supervisor.endpoints(of: "test").pids
            return now.count == 2 && !now.contains(victim)
        })
        #expect(supervisor.endpoints(of: "test").pids.contains(before[1]))
        supervisor.stop(graceful: false)
        #expect(supervisor.waitUntilStopped() == nil)
    }

    @Test func reloadSwitchesToANewGenerationAndStopsTheOldOne() throws {
        let supervisor = try supervisor(pool("serve"))
        try supervisor.start()
        let old = supervisor.endpoints(of: "test")
        #expect(old.generation == 1)
        supervisor.reload()
        #expect(eventually { supervisor.endpoints(of: "test").generation == 2 })
        let new = supervisor.endpoints(of: "test")
        #expect(new.pids.count == 2 && Set(new.pids).isDisjoint(with: old.pids))
        #expect(eventually { old.pids.allSatisfy { !isAlive($0) } })
        supervisor.stop(graceful: true)
        #expect(supervisor.waitUntilStopped() == nil)
    }

    @Test func reloadWithANewConfigResizesAddsAndRemovesPools() throws {
        let supervisor = try supervisor(pool("serve"))
        try supervisor.start()
        var bigger = pool("serve", workers: 3)
        bigger.name = "test"
        var extra = pool("serve", workers: 1)
        extra.name = "extra"
        supervisor.reload(with: [bigger, extra])
        #expect(eventually {
            supervisor.endpoints(of: "test").generation == 2 && supervisor.endpoints(of: "test").pids.count == 3
                && supervisor.endpoints(of: "extra").pids.count == 1
        })
        supervisor.reload(with: [extra])
        #expect(eventually { supervisor.endpoints(of: "test").pids.isEmpty })
        #expect(supervisor.endpoints(of: "extra").pids.count == 1)
        #expect(!supervisor.isFinished)
        supervisor.stop(graceful: true)
        #expect(supervisor.waitUntilStopped() == nil)
    }

    @Test func aRecyclingWorkerIsReplaced() throws {
        let supervisor = try supervisor(pool("recycle", workers: 1))
        try supervisor.start()
        let first = supervisor.endpoints(of: "test").pids[0]
        #expect(eventually { !isAlive(first) })
        #expect(supervisor.endpoints(of: "test").pids.count == 1)
        supervisor.stop(graceful: false)
        #expect(supervisor.waitUntilStopped() == nil)
    }

    @Test func perWorkerSocketsArePublishedAndRemoved() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gantry-sup-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let supervisor = try supervisor(pool("bind", sockets: .perWorker(directory: directory)))
        try supervisor.start()
        let paths = supervisor.endpoints(of: "test").socketPaths
        #expect(paths.count == 2)
        #expect(paths.allSatisfy { FileManager.default.fileExists(atPath: $0) })
        supervisor.stop(graceful: true)
        #expect(supervisor.waitUntilStopped() == nil)
        #expect(paths.allSatisfy { !FileManager.default.fileExists(atPath: $0) })
    }
}
