#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Requests waiting for a Python thread. Python threads block here with the
/// GIL released.
final class RequestQueue: @unchecked Sendable {
    private let monitor = Monitor()
    private var jobs: [WSGIJob] = []
    private var head = 0
    private var closed = false

    func push(_ job: WSGIJob) {
        monitor.withLock {
            jobs.append(job)
            waiting.wrappingAdd(1, ordering: .relaxed)
            monitor.signal()
        }
    }

    /// Jobs waiting, readable without the lock (for the spin in `pop`).
    private let waiting = Atomic<Int>(0)

    /// Rounds of yielding before a Python thread sleeps: under load the next
    /// request comes within microseconds, and waking a sleeping thread costs
    /// both threads a futex call and a context switch. Few rounds: each is a
    /// system call, and a yielding thread still competes for the core.
    static let spinRounds: Int = getenv("GANTRY_WSGI_SPIN").flatMap { Int(String(cString: $0)) } ?? 8

    /// The next request, or nil once closed.
    func pop() -> WSGIJob? {
        var round = 0
        while waiting.load(ordering: .relaxed) == 0, round < Self.spinRounds {
            sched_yield()
            round += 1
        }
        return monitor.withLock {
            while head == jobs.count {
                if closed { return nil }
                monitor.wait()
            }
            return take()
        }
    }

    /// Lock held, a job waiting.
    private func take() -> WSGIJob {
        let job = jobs[head]
        head += 1
        waiting.wrappingSubtract(1, ordering: .relaxed)
        if head > 64 && head * 2 > jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }

    func close() {
        monitor.withLock {
            closed = true
            monitor.broadcast()
        }
    }
}
