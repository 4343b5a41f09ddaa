import Balancer
import HTTPFront
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Milliseconds of the monotonic clock the balancer runs on.
func monotonicMilliseconds() -> Int64 {
    Int64(NIODeadline.now().uptimeNanoseconds / 1_000_000)
}

/// A running `upstream` group (or the implicit one of `proxy_pass http://host:port`):
/// the balancer behind a lock, the keep-alive pool, the wait queue.
public final class UpstreamGroup: Sendable {
    public let name: String
    public let addresses: [UpstreamAddress]
    let hashKey: VariableTemplate?
    let pool: ConnectionPool
    let healthCheck: HealthCheckSettings?
    let queueTimeout: Int64
    private let balancer: NIOLockedValueBox<UpstreamBalancer>
    private let waiting: NIOLockedValueBox<Waiters>
    let logger: Logger

    /// Requests waiting for a peer below `max_conns` (`queue N`).
    struct Waiters {
        var queue: WaitQueue<Int>?
        var nextTicket = 0
        var wakeups: [Int: @Sendable () -> Void] = [:]
    }

    init(definition: UpstreamDefinition, logger: Logger) {
        name = definition.name
        addresses = definition.servers.map(\.address)
        hashKey = definition.hashKey
        pool = ConnectionPool(capacity: definition.keepalive, idleTimeout: definition.keepaliveTimeout,
                              maxRequests: definition.keepaliveRequests)
        healthCheck = definition.healthCheck
        queueTimeout = definition.queue?.timeout ?? 0
        balancer = NIOLockedValueBox(UpstreamBalancer(peers: definition.servers.map(\.peer), method: definition.method))
        waiting = NIOLockedValueBox(Waiters(queue: definition.queue.map { WaitQueue<Int>(capacity: $0.capacity, timeout: $0.timeout) }))
        self.logger = logger
    }

    /// The implicit group of a `proxy_pass` naming an address: one peer, nginx's defaults.
    convenience init(implicit address: UpstreamAddress, name: String, logger: Logger) {
        var definition = UpstreamDefinition(name: name)
        definition.servers = [(address, PeerConfiguration(name: address.description))]
        self.init(definition: definition, logger: logger)
    }

    var method: BalancingMethod { balancer.withLockedValue { $0.method } }

    func beginAttempt(clientAddress: [UInt8], hashKey: String, maxTries: Int) -> PeerAttempt {
        balancer.withLockedValue { $0.beginAttempt(clientAddress: clientAddress, hashKey: hashKey, maxTries: maxTries) }
    }

    func pick(_ attempt: inout PeerAttempt) -> Int? {
        let now = monotonicMilliseconds()
        return balancer.withLockedValue { balancer in balancer.pick(&attempt, now: now)?.index }
    }

    /// Returns the peer to the balancer and wakes one queued request, if any.
    func release(_ attempt: inout PeerAttempt, failed: Bool) {
        let now = monotonicMilliseconds()
        let event = balancer.withLockedValue { balancer in
            balancer.release(&attempt, outcome: failed ? .failure : .success, now: now)
        }
        if case .temporarilyDisabled(let peer) = event {
            logger.warning("upstream server temporarily disabled", metadata: ["upstream": "\(addresses[peer.index])"])
        }
        wakeOneWaiter()
    }

    /// Whether a request that found no peer should wait: a queue is configured and some live peer is only busy.
    func shouldQueue() -> Bool {
        guard waiting.withLockedValue({ $0.queue != nil }) else { return false }
        let now = monotonicMilliseconds()
        return balancer.withLockedValue { $0.hasLivePeerAtCapacity(now: now) }
    }

    /// Queues a request; `wake` runs (on any thread) when a peer frees up. Nil when the queue is full.
    func enqueue(wake: @escaping @Sendable () -> Void) -> Int? {
        let now = monotonicMilliseconds()
        return waiting.withLockedValue { waiters -> Int? in
            let ticket = waiters.nextTicket
            guard case .queued = waiters.queue?.enqueue(ticket, now: now) else { return nil }
            waiters.nextTicket += 1
            waiters.wakeups[ticket] = wake
            return ticket
        }
    }

    /// Removes a waiter (timed out or client gone); false when it was already woken.
    func cancelWaiter(_ ticket: Int) -> Bool {
        waiting.withLockedValue { waiters in
            waiters.wakeups.removeValue(forKey: ticket)
            return waiters.queue?.cancel(ticket) ?? false
        }
    }

    private func wakeOneWaiter() {
        let wake = waiting.withLockedValue { waiters -> (@Sendable () -> Void)? in
            guard let ticket = waiters.queue?.next() else { return nil }
            return waiters.wakeups.removeValue(forKey: ticket)
        }
        wake?()
    }

    // MARK: Health

    func setHealthy(peer: Int, _ healthy: Bool) {
        balancer.withLockedValue { $0.setHealthy(PeerID(peer), healthy) }
        if healthy { wakeOneWaiter() }
    }

    /// For tests and status: active connections per peer.
    public func activeConnections() -> [Int] {
        balancer.withLockedValue { balancer in balancer.allPeers.map { balancer.activeConnections(of: $0) } }
    }
}
