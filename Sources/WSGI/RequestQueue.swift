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

    /// The next request, or nil once closed.
    func pop() -> WSGIJob? {
        monitor.withLock {
            while head == jobs.count {
                if closed { return nil }
                monitor.wait()
            }
            let job = jobs[head]
            head += 1
            if head > 64 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            return job
        }
    }

    func close() {
        monitor.withLock {
            closed = true
            monitor.broadcast()
        }
    }
}
