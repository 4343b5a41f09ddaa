#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
            monitor.signal()
        }
    }

    /// Rounds of yielding before a Python thread sleeps: under load the next
    /// request comes within microseconds, and waking a sleeping thread costs the
    /// event loop a futex syscall per request. Yielding (not busy-waiting) lets
    /// other runnable threads have the core meanwhile.
    static let spinRounds = 64

    /// The next request, or nil once closed.
    func pop() -> WSGIJob? {
        for _ in 0..<Self.spinRounds {
            if let job = monitor.withLock({ () -> WSGIJob? in
                guard head < jobs.count else { return nil }
                return take()
            }) { return job }
            sched_yield()
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
