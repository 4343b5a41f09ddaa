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
    /// Shared by every generation of a group whose servers change at run time (an app pool's
    /// workers): the newest one takes new requests and retries.
    let lineage: Lineage
    /// The definition this group was built from (its servers replaced by ``replacingServers(_:)``).
    let definition: UpstreamDefinition

    /// Where the newest generation of a group is; each replacement moves it.
    final class Lineage: Sendable {
        private struct State {
            var newest: UpstreamGroup?
            var waiters: [@Sendable () -> Void] = []
        }
        private let state = NIOLockedValueBox(State())
        /// The group's servers come and go at run time (an app pool: it was defined with none).
        let followsMembership: Bool
        var current: UpstreamGroup? { state.withLockedValue { $0.newest } }

        init(followsMembership: Bool) { self.followsMembership = followsMembership }

        func advance(to group: UpstreamGroup) {
            let waiters = state.withLockedValue { state -> [@Sendable () -> Void] in
                state.newest = group
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter() }
        }

        /// Runs `callback` (on any thread) once a generation newer than `group` exists; false when one already does.
        func whenSuperseded(_ group: UpstreamGroup, _ callback: @escaping @Sendable () -> Void) -> Bool {
            state.withLockedValue { state in
                guard state.newest === group else { return false }
                state.waiters.append(callback)
                return true
            }
        }
    }

    /// Requests waiting for a peer below `max_conns` (`queue N`).
    struct Waiters {
        var queue: WaitQueue<Int>?
        var nextTicket = 0
        var wakeups: [Int: @Sendable () -> Void] = [:]
    }

    init(definition: UpstreamDefinition, logger: Logger, lineage: Lineage? = nil) {
        self.definition = definition
        self.lineage = lineage ?? Lineage(followsMembership: definition.servers.isEmpty)
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
        if lineage == nil { self.lineage.advance(to: self) }
    }

    /// The newest generation of this group (itself unless its servers were replaced since).
    public var newest: UpstreamGroup { lineage.current ?? self }

    /// Whether a newer generation replaced this one: its peers are on their way out.
    public var isSuperseded: Bool { newest !== self }

    /// A new generation of this group with other servers (same balancing, keep-alive, queue and
    /// health settings); it becomes ``newest``. Requests running on this one finish here, and their
    /// retries move to the new one.
    func replacingServers(_ servers: [(address: UpstreamAddress, peer: PeerConfiguration)]) -> UpstreamGroup {
        var next = definition
        next.servers = servers
        let group = UpstreamGroup(definition: next, logger: logger, lineage: lineage)
        lineage.advance(to: group)
        return group
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
