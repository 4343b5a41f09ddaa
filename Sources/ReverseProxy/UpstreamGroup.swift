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
///
/// The server list can be replaced while requests run (an app pool's new generation of
/// workers): requests that started on the old list finish on it, new ones use the new one.
public final class UpstreamGroup: Sendable {
    public let name: String
    let hashKey: VariableTemplate?
    let pool: ConnectionPool
    let healthCheck: HealthCheckSettings?
    let queueTimeout: Int64
    /// Whether `queue` is configured: without one, releasing a peer has no waiter to wake (no second lock).
    let hasQueue: Bool
    private let state: SpinningLockedValue<State>
    private let waiting: SpinningLockedValue<Waiters>
    let logger: Logger

    /// One server list with its balancer.
    struct Generation {
        var balancer: UpstreamBalancer
        let addresses: [UpstreamAddress]
        /// `addresses` as `$upstream_addr` prints them, formatted once rather than per request.
        let names: [String]
        /// Requests begun on this list and not yet over (they may still retry on it).
        var attempts = 0
    }

    struct State {
        var current: Int
        var generations: [Int: Generation]
        /// Requests waiting for servers (an app pool between a worker's death and its replacement).
        var serverWaiters: [@Sendable () -> Void] = []
    }

    /// The per-request side: which server list it balances over, and nginx's tries.
    struct Attempt {
        let generation: Int
        var peers: PeerAttempt
        var currentAddress: UpstreamAddress?
        /// `currentAddress` as `$upstream_addr` prints it.
        var currentName = ""
        var triesLeft: Int { peers.triesLeft }
    }

    /// Requests waiting for a peer below `max_conns` (`queue N`).
    struct Waiters {
        var queue: WaitQueue<Int>?
        var nextTicket = 0
        var wakeups: [Int: @Sendable () -> Void] = [:]
    }

    /// Whether the balancer hashes the client address (`ip_hash`), worth parsing it per request.
    let usesClientAddress: Bool
    /// Servers come and go at run time (an app pool's workers: it is defined with none).
    let followsMembership: Bool

    init(definition: UpstreamDefinition, logger: Logger) {
        name = definition.name
        usesClientAddress = definition.method == .ipHash
        followsMembership = definition.servers.isEmpty
        hashKey = definition.hashKey
        pool = ConnectionPool(capacity: definition.keepalive, idleTimeout: definition.keepaliveTimeout,
                              maxRequests: definition.keepaliveRequests)
        healthCheck = definition.healthCheck
        queueTimeout = definition.queue?.timeout ?? 0
        hasQueue = definition.queue != nil
        let first = Generation(balancer: UpstreamBalancer(peers: definition.servers.map(\.peer), method: definition.method),
                               addresses: definition.servers.map(\.address),
                               names: definition.servers.map(\.address.description))
        state = SpinningLockedValue(State(current: 0, generations: [0: first]))
        waiting = SpinningLockedValue(Waiters(queue: definition.queue.map { WaitQueue<Int>(capacity: $0.capacity, timeout: $0.timeout) }))
        self.logger = logger
    }

    /// The implicit group of a `proxy_pass` naming an address: one peer, nginx's defaults.
    convenience init(implicit address: UpstreamAddress, name: String, logger: Logger) {
        var definition = UpstreamDefinition(name: name)
        definition.servers = [(address, PeerConfiguration(name: address.description))]
        self.init(definition: definition, logger: logger)
    }

    /// The servers new requests are balanced over.
    public var addresses: [UpstreamAddress] {
        state.withLockedValue { $0.generations[$0.current]!.addresses }
    }

    /// Switches new requests to `servers` (same balancing method); requests already running
    /// finish on the servers they started with. Idle pooled connections to servers that left are closed.
    public func replaceServers(_ servers: [(address: UpstreamAddress, peer: PeerConfiguration)]) {
        let waiters = state.withLockedValue { state -> [@Sendable () -> Void] in
            let method = state.generations[state.current]!.balancer.method
            let old = state.current
            state.current += 1
            state.generations[state.current] = Generation(
                balancer: UpstreamBalancer(peers: servers.map(\.peer), method: method), addresses: servers.map(\.address),
                names: servers.map(\.address.description))
            Self.dropIfDrained(old, in: &state)
            defer { state.serverWaiters = [] }
            return state.serverWaiters
        }
        pool.closeIdle(except: Set(servers.map(\.address)))
        for waiter in waiters { waiter() }
        wakeOneWaiter()
    }

    /// The generation new requests start on.
    var currentGeneration: Int { state.withLockedValue { $0.current } }

    /// Whether the servers changed since `attempt` began: a retry then moves to the new ones
    /// (the old servers of an app pool are on their way out).
    func isSuperseded(_ attempt: Attempt) -> Bool { currentGeneration != attempt.generation }

    /// Whether `attempt`'s server list is empty (an app pool with no worker accepting yet).
    func hasNoServers(_ attempt: Attempt) -> Bool {
        state.withLockedValue { Self.withGeneration(attempt.generation, in: &$0) { $0.addresses.isEmpty } ?? true }
    }

    /// Runs `body` on a generation in place. Reading one out of the dictionary copies it (its
    /// balancer's arrays included), and this runs a few times per proxied request.
    private static func withGeneration<Result>(_ generation: Int, in state: inout State,
                                               _ body: (inout Generation) -> Result) -> Result? {
        guard let index = state.generations.index(forKey: generation) else { return nil }
        return body(&state.generations.values[index])
    }

    /// Runs `callback` (on any thread) once the servers are replaced after `generation`;
    /// false when that already happened.
    func whenServersReplaced(after generation: Int, _ callback: @escaping @Sendable () -> Void) -> Bool {
        state.withLockedValue { state in
            guard state.current == generation else { return false }
            state.serverWaiters.append(callback)
            return true
        }
    }

    private static func dropIfDrained(_ generation: Int, in state: inout State) {
        guard generation != state.current, let old = state.generations[generation] else { return }
        if old.attempts == 0 { state.generations[generation] = nil }
    }

    func beginAttempt(clientAddress: [UInt8], hashKey: String, maxTries: Int) -> Attempt {
        state.withLockedValue { state in
            // One hash lookup, then the entry is mutated in place.
            let current = state.current
            let peers = Self.withGeneration(current, in: &state) { generation in
                generation.attempts += 1
                return generation.balancer.beginAttempt(clientAddress: clientAddress, hashKey: hashKey, maxTries: maxTries)
            }!
            return Attempt(generation: current, peers: peers)
        }
    }

    func pick(_ attempt: inout Attempt) -> UpstreamAddress? {
        let now = monotonicMilliseconds()
        // Mutated in place in the dictionary: a copy out and back would copy the balancer's arrays per request.
        let picked = state.withLockedValue { state -> (UpstreamAddress, String)? in
            Self.withGeneration(attempt.generation, in: &state) { generation -> (UpstreamAddress, String)? in
                guard let peer = generation.balancer.pick(&attempt.peers, now: now) else { return nil }
                return (generation.addresses[peer.index], generation.names[peer.index])
            } ?? nil
        }
        attempt.currentAddress = picked?.0
        attempt.currentName = picked?.1 ?? ""
        let address = picked?.0
        return address
    }

    /// Returns the peer to the balancer and wakes one queued request, if any.
    func release(_ attempt: inout Attempt, failed: Bool) {
        let now = monotonicMilliseconds()
        let disabled = state.withLockedValue { state -> UpstreamAddress? in
            Self.withGeneration(attempt.generation, in: &state) { generation -> UpstreamAddress? in
                let event = generation.balancer.release(&attempt.peers, outcome: failed ? .failure : .success, now: now)
                if case .temporarilyDisabled(let peer) = event { return generation.addresses[peer.index] }
                return nil
            } ?? nil
        }
        if let disabled {
            logger.warning("upstream server temporarily disabled while connecting to upstream \"\(name)\", upstream: \"\(disabled)\"")
        }
        attempt.currentAddress = nil
        wakeOneWaiter()
    }

    /// The request is over: its server list may go once no other request uses it.
    func endAttempt(_ attempt: Attempt) {
        state.withLockedValue { state in
            Self.withGeneration(attempt.generation, in: &state) { $0.attempts -= 1 }
            // The current list always stays.
            if attempt.generation != state.current { Self.dropIfDrained(attempt.generation, in: &state) }
        }
    }

    /// Whether a request that found no peer should wait: a queue is configured and some live peer is only busy.
    func shouldQueue() -> Bool {
        guard waiting.withLockedValue({ $0.queue != nil }) else { return false }
        let now = monotonicMilliseconds()
        return state.withLockedValue { $0.generations[$0.current]!.balancer.hasLivePeerAtCapacity(now: now) }
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
        guard hasQueue else { return }
        let wake = waiting.withLockedValue { waiters -> (@Sendable () -> Void)? in
            guard let ticket = waiters.queue?.next() else { return nil }
            return waiters.wakeups.removeValue(forKey: ticket)
        }
        wake?()
    }

    // MARK: Health

    /// Marks the current list's server at `address` up or down (active health checks).
    func setHealthy(_ address: UpstreamAddress, _ healthy: Bool) {
        state.withLockedValue { state in
            guard var generation = state.generations[state.current],
                  let index = generation.addresses.firstIndex(of: address) else { return }
            generation.balancer.setHealthy(PeerID(index), healthy)
            state.generations[state.current] = generation
        }
        if healthy { wakeOneWaiter() }
    }

    /// Active connections per server of the current list (for tests and status).
    public func activeConnections() -> [Int] {
        state.withLockedValue { state in
            let balancer = state.generations[state.current]!.balancer
            return balancer.allPeers.map { balancer.activeConnections(of: $0) }
        }
    }

    /// How many server lists are still alive (the current one plus those still draining).
    public var generationCount: Int { state.withLockedValue { $0.generations.count } }
}
