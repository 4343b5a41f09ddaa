#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Synchronization

/// Requests waiting for a Python thread. Python threads block here with the
/// GIL released.
///
/// In `exclusive` mode (one Python thread, requests without a body run on the
/// event loop: see `PythonWorker.runInline`) the queue also says who may run
/// Python for a request: the loop (`tryClaim`) or the Python thread (`pop`),
/// never both, so a `--threads 1` app never sees two requests at once.
final class RequestQueue: @unchecked Sendable {
    private let monitor = Monitor()
    private var jobs: [WSGIJob] = []
    private var head = 0
    private var closed = false
    let exclusive: Bool
    /// Exclusive mode: a request is running (on the loop or the Python thread).
    private var busy = false
    /// Exclusive mode: a request the loop started and hands over to the Python
    /// thread to finish (a streamed response); `busy` stays set.
    private var handedOver: WSGIJob?

    init(exclusive: Bool = false) {
        self.exclusive = exclusive
    }

    func push(_ job: WSGIJob) {
        monitor.withLock {
            jobs.append(job)
            waiting.wrappingAdd(1, ordering: .relaxed)
            monitor.signal()
        }
    }

    /// Jobs waiting, readable without the lock (for the spin in `pop`).
    private let waiting = Atomic<Int>(0)

    /// How long a Python thread yields the core, waiting for the next request,
    /// before it sleeps: under load the next request comes within microseconds,
    /// and a sleep costs both threads a futex call and a context switch (each
    /// dear on a virtual machine). Yielding, not busy-waiting, lets the event
    /// loop (or anything else runnable) have the core meanwhile. Two bounds: a
    /// count of rounds, which is what costs CPU when nothing else wants the core
    /// (each round is a system call), and a time, for when each yield does give
    /// the core away for long. Not in exclusive mode: there the loop runs most
    /// requests itself and the Python thread is usually idle.
    static let spinRounds: Int = getenv("GANTRY_WSGI_SPIN").flatMap { Int(String(cString: $0)) } ?? 64
    static let spinNanoseconds: UInt64 = getenv("GANTRY_WSGI_SPIN_US").flatMap { UInt64(String(cString: $0)) }.map { $0 * 1000 } ?? 1_000_000

    /// Whether requests wait for a Python thread (a hint: read without the lock).
    var hasWaiting: Bool { waiting.load(ordering: .relaxed) > 0 }

    /// Exclusive mode, on the loop: may the loop run a request now? True when
    /// nothing runs and nothing waits; the caller then owns the app until
    /// `release` or `handOver`.
    func tryClaim() -> Bool {
        monitor.withLock {
            guard exclusive, !busy, !closed, head == jobs.count else { return false }
            busy = true
            return true
        }
    }

    /// Exclusive mode: the request that claimed the app is done.
    func release() {
        monitor.withLock {
            busy = false
            if head < jobs.count { monitor.signal() }
        }
    }

    /// Exclusive mode, on the loop: the Python thread finishes `job` (its claim passes on).
    func handOver(_ job: WSGIJob) {
        monitor.withLock {
            handedOver = job
            monitor.signal()
        }
    }

    /// The next request, or nil once closed. `continuing`: a request handed over
    /// by the loop, already started. In exclusive mode the caller owns the app
    /// until it calls `release`.
    func pop() -> (job: WSGIJob, continuing: Bool)? {
        if !exclusive, waiting.load(ordering: .relaxed) == 0, Self.spinRounds > 0 {
            let start = DispatchTime.now().uptimeNanoseconds
            var rounds = 0
            repeat {
                sched_yield()
                rounds += 1
            } while waiting.load(ordering: .relaxed) == 0 && rounds < Self.spinRounds
                && DispatchTime.now().uptimeNanoseconds - start < Self.spinNanoseconds
        }
        return monitor.withLock {
            while true {
                if let job = handedOver {
                    handedOver = nil
                    return (job, true)
                }
                if head < jobs.count, !busy {
                    if exclusive { busy = true }
                    return (take(), false)
                }
                if closed { return nil }
                monitor.wait()
            }
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
