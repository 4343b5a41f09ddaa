/// The bounded wait of `queue N timeout=T;` (an nginx Plus directive): when every
/// peer is at `max_conns`, a request waits here instead of failing or piling onto
/// a busy server. Full queue or a wait past the timeout → 502, as nginx Plus answers.
///
/// Pure bookkeeping: the proxy owns the waiters' continuations and the timers,
/// and calls `next()` whenever a connection is released.
public struct WaitQueue<Ticket: Hashable & Sendable>: Sendable {
    public let capacity: Int
    /// Milliseconds a request may wait (nginx Plus's default is 60 s).
    public let timeout: Int64
    private var entries: [(ticket: Ticket, deadline: Int64)] = []
    private var head = 0

    public enum Admission: Sendable, Equatable {
        case queued(deadline: Int64)
        /// The queue already holds `capacity` requests.
        case full
    }

    public init(capacity: Int, timeout: Int64 = 60_000) {
        self.capacity = max(0, capacity)
        self.timeout = timeout
    }

    public var count: Int { entries.count - head }
    public var isEmpty: Bool { count == 0 }

    public mutating func enqueue(_ ticket: Ticket, now: Int64) -> Admission {
        guard count < capacity else { return .full }
        let deadline = now + timeout
        entries.append((ticket, deadline))
        return .queued(deadline: deadline)
    }

    /// The oldest waiter, removed from the queue (first come, first served).
    public mutating func next() -> Ticket? {
        guard head < entries.count else { return nil }
        let ticket = entries[head].ticket
        head += 1
        compact()
        return ticket
    }

    /// Removes a waiter that went away (client closed, or it was served otherwise).
    @discardableResult
    public mutating func cancel(_ ticket: Ticket) -> Bool {
        guard let index = entries[head...].firstIndex(where: { $0.ticket == ticket }) else { return false }
        entries.remove(at: index)
        return true
    }

    /// Removes and returns every waiter whose deadline has passed; each gets a 502.
    public mutating func expire(now: Int64) -> [Ticket] {
        var expired: [Ticket] = []
        // Deadlines grow with arrival order, so expired waiters are at the front.
        while head < entries.count, entries[head].deadline <= now {
            expired.append(entries[head].ticket)
            head += 1
        }
        compact()
        return expired
    }

    /// The earliest deadline still waiting, for the caller's timer.
    public var nextDeadline: Int64? { head < entries.count ? entries[head].deadline : nil }

    private mutating func compact() {
        if head > 64, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
    }
}
