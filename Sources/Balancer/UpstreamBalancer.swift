/// The state of one `upstream` group and nginx's selection algorithms over it.
///
/// A value type with no locking and no clock: the proxy keeps it behind a lock
/// and passes `now` (milliseconds of a monotonic clock) into every call, so the
/// same code runs in unit tests with time moved by hand.
///
/// Usage per request: `beginAttempt`, then `pick` → connect → `release(outcome:)`,
/// and `pick` again while the request may be retried (`attempt.triesLeft > 0`).
public struct UpstreamBalancer: Sendable {
    public let method: BalancingMethod
    var peers: [PeerState]
    let primary: [Int]
    let backup: [Int]
    /// Sum of primary weights, down ones included (`peers->total_weight`), for the hash walks.
    let totalWeight: Int
    let ring: ConsistentHashRing?
    var random: SplitMix64

    /// A warning nginx would log ("upstream server temporarily disabled"), returned so the caller logs it.
    public enum Event: Sendable, Equatable {
        case temporarilyDisabled(PeerID)
    }

    public enum Outcome: Sendable {
        case success
        /// Counts toward `max_fails` (connect error, timeout, a `proxy_next_upstream` status…).
        case failure
    }

    public init(peers configurations: [PeerConfiguration], method: BalancingMethod = .roundRobin,
                random: SplitMix64 = SplitMix64()) {
        self.method = method
        self.peers = configurations.map(PeerState.init)
        self.primary = configurations.indices.filter { !configurations[$0].isBackup }
        self.backup = configurations.indices.filter { configurations[$0].isBackup }
        self.totalWeight = primary.reduce(0) { $0 + configurations[$1].weight }
        if case .hash(consistent: true) = method {
            ring = ConsistentHashRing(peers: configurations)
        } else {
            ring = nil
        }
        self.random = random
    }

    // MARK: Introspection

    public var peerCount: Int { peers.count }
    public func configuration(of peer: PeerID) -> PeerConfiguration { peers[peer.index].configuration }
    public func activeConnections(of peer: PeerID) -> Int { peers[peer.index].conns }
    public func failures(of peer: PeerID) -> Int { peers[peer.index].fails }
    public func isHealthy(_ peer: PeerID) -> Bool { peers[peer.index].healthy }
    public var allPeers: [PeerID] { peers.indices.map(PeerID.init) }

    /// nginx's "single" upstream: one primary and no backups. Its failures are never counted.
    var isSingle: Bool { primary.count == 1 && backup.isEmpty }

    /// Whether some peer could take a request if it were not at `max_conns`: used to decide
    /// between queueing (all busy) and failing at once (all dead).
    public func hasLivePeerAtCapacity(now: Int64) -> Bool {
        peers.contains { !$0.isDead(now: now) && $0.configuration.maxConns > 0 && $0.conns >= $0.configuration.maxConns }
    }

    // MARK: Active health checks

    /// Marks a peer up or down from an active health check; a peer marked down is skipped like `down`.
    public mutating func setHealthy(_ peer: PeerID, _ healthy: Bool) {
        peers[peer.index].healthy = healthy
        if healthy { peers[peer.index].fails = 0 }
    }

    // MARK: Selection

    /// Starts balancing one request. `maxTries` is `proxy_next_upstream_tries` (0 = no limit).
    public func beginAttempt(clientAddress: [UInt8] = [0, 0, 0], hashKey: String = "", maxTries: Int = 0) -> PeerAttempt {
        // Counted in place (per request: no filtered arrays).
        var tries = 0
        for index in primary where !peers[index].configuration.isDown { tries += 1 }
        for index in backup where !peers[index].configuration.isDown { tries += 1 }
        if maxTries > 0, tries > maxTries { tries = maxTries }
        var attempt = PeerAttempt(triesLeft: tries, addressBytes: clientAddress, key: Array(hashKey.utf8),
                                  initialHash: method == .ipHash ? 89 : 0)
        if let ring, !ring.points.isEmpty {
            attempt.hash = UInt32(ring.firstPoint(atOrAfter: CRC32.checksum(attempt.key)))
        }
        return attempt
    }

    /// Chooses the next peer for this request, or nil when none is available ("no live upstreams":
    /// nginx answers 502 and, for quick recovery, forgets every peer's failures).
    public mutating func pick(_ attempt: inout PeerAttempt, now: Int64) -> PeerID? {
        guard !primary.isEmpty || !backup.isEmpty else { return nil }  // no servers (yet)
        let chosen: Int?
        switch method {
        case .roundRobin: chosen = pickRoundRobin(&attempt, now: now)
        case .leastConn: chosen = pickLeastConn(&attempt, now: now)
        case .ipHash: chosen = pickIPHash(&attempt, now: now)
        case .hash(consistent: false): chosen = pickHash(&attempt, now: now)
        case .hash(consistent: true): chosen = pickConsistentHash(&attempt, now: now)
        case .random(let two): chosen = pickRandom(&attempt, two: two, now: now)
        }
        guard let chosen else { return nil }
        attempt.current = PeerID(chosen)
        return PeerID(chosen)
    }

    /// Returns a peer after use (nginx's `free_round_robin_peer`): failure accounting, connection count, tries.
    @discardableResult
    public mutating func release(_ attempt: inout PeerAttempt, outcome: Outcome, now: Int64) -> Event? {
        guard let id = attempt.current else { return nil }
        attempt.current = nil
        var event: Event?
        if isSingle {
            peers[id.index].conns -= 1
            attempt.triesLeft = 0
            return nil
        }
        var peer = peers[id.index]
        switch outcome {
        case .failure:
            peer.fails += 1
            peer.accessed = now
            peer.checked = now
            if peer.configuration.maxFails > 0 {
                peer.effectiveWeight -= peer.weight / peer.configuration.maxFails
                if peer.fails >= peer.configuration.maxFails { event = .temporarilyDisabled(id) }
            }
            if peer.effectiveWeight < 0 { peer.effectiveWeight = 0 }
        case .success:
            // A peer picked again after its fail window and now answering is live again.
            if peer.accessed < peer.checked { peer.fails = 0 }
        }
        peer.conns -= 1
        peers[id.index] = peer
        if attempt.triesLeft > 0 { attempt.triesLeft -= 1 }
        return event
    }

    // MARK: Round robin

    mutating func pickRoundRobin(_ attempt: inout PeerAttempt, now: Int64) -> Int? {
        let tier = attempt.inBackupTier ? backup : primary
        var chosen: Int?
        if isSingle {
            let only = primary[0]
            let peer = peers[only]
            let full = peer.configuration.maxConns > 0 && peer.conns >= peer.configuration.maxConns
            if !peer.configuration.isDown, peer.healthy, !full, !attempt.tried.contains(only) { chosen = only }
        } else {
            chosen = smoothWeighted(among: tier, attempt: attempt, now: now)
        }
        if let chosen {
            claim(chosen, &attempt, now: now)
            return chosen
        }
        return failTier(&attempt, now: now) { $0.pickRoundRobin(&$1, now: now) }
    }

    /// nginx's smooth weighted round robin over the available peers of `tier`.
    mutating func smoothWeighted(among tier: [Int], attempt: PeerAttempt, now: Int64) -> Int? {
        var best: Int?
        var total = 0
        for index in tier where !attempt.tried.contains(index) && !peers[index].isUnavailable(now: now) {
            total += peers[index].addSmoothWeight()
            if best == nil || peers[index].currentWeight > peers[best!].currentWeight { best = index }
        }
        guard let best else { return nil }
        peers[best].currentWeight -= total
        return best
    }

    /// Counts a chosen peer in (`conns++`, tried bit, fail window start).
    mutating func claim(_ index: Int, _ attempt: inout PeerAttempt, now: Int64) {
        if now - peers[index].checked > peers[index].configuration.failTimeout { peers[index].checked = now }
        peers[index].conns += 1
        attempt.tried.insert(index)
    }

    /// The end of every method's `failed:` path: try the backup tier once, then reset the failures
    /// of the tier that had nothing (nginx's "mark them as live for quick recovery").
    mutating func failTier(_ attempt: inout PeerAttempt, now: Int64,
                           retry: (inout UpstreamBalancer, inout PeerAttempt) -> Int?) -> Int? {
        let tier = attempt.inBackupTier ? backup : primary
        if !attempt.inBackupTier, !backup.isEmpty {
            attempt.inBackupTier = true
            if let found = retry(&self, &attempt) { return found }
        }
        for index in tier { peers[index].fails = 0 }
        return nil
    }

    // MARK: least_conn

    mutating func pickLeastConn(_ attempt: inout PeerAttempt, now: Int64) -> Int? {
        if isSingle { return pickRoundRobin(&attempt, now: now) }
        let tier = attempt.inBackupTier ? backup : primary
        var best: Int?
        var many = false
        var bestPosition = 0
        for (position, index) in tier.enumerated()
        where !attempt.tried.contains(index) && !peers[index].isUnavailable(now: now) {
            guard let current = best else { best = index; bestPosition = position; continue }
            let lhs = peers[index].conns * peers[current].weight
            let rhs = peers[current].conns * peers[index].weight
            if lhs < rhs {
                best = index; bestPosition = position; many = false
            } else if lhs == rhs {
                many = true
            }
        }
        guard var chosen = best else {
            return failTier(&attempt, now: now) { $0.pickLeastConn(&$1, now: now) }
        }
        if many {
            // Ties go to smooth weighted round robin among the tied peers, from the first one on.
            var total = 0
            let reference = chosen
            for index in tier[bestPosition...]
            where !attempt.tried.contains(index) && !peers[index].isUnavailable(now: now) {
                guard peers[index].conns * peers[reference].weight == peers[reference].conns * peers[index].weight
                else { continue }
                total += peers[index].addSmoothWeight()
                if peers[index].currentWeight > peers[chosen].currentWeight { chosen = index }
            }
            peers[chosen].currentWeight -= total
        }
        claim(chosen, &attempt, now: now)
        return chosen
    }

    // MARK: ip_hash and hash

    /// Walks the weights as nginx does: `w = hash % total_weight`, then subtract weights in order.
    func weightedIndex(_ hash: UInt32) -> Int {
        var w = Int(hash % UInt32(max(1, totalWeight)))
        var position = 0
        while position < primary.count - 1, w >= peers[primary[position]].weight {
            w -= peers[primary[position]].weight
            position += 1
        }
        return primary[position]
    }

    mutating func pickIPHash(_ attempt: inout PeerAttempt, now: Int64) -> Int? {
        if attempt.hashTries > 20 || isSingle { return pickRoundRobin(&attempt, now: now) }
        while true {
            var hash = attempt.hash
            for byte in attempt.addressBytes { hash = (hash &* 113 &+ UInt32(byte)) % 6271 }
            attempt.hash = hash
            let index = weightedIndex(hash)
            if !attempt.tried.contains(index), !peers[index].isUnavailable(now: now) {
                claim(index, &attempt, now: now)
                return index
            }
            attempt.hashTries += 1
            if attempt.hashTries > 20 { return pickRoundRobin(&attempt, now: now) }
        }
    }

    mutating func pickHash(_ attempt: inout PeerAttempt, now: Int64) -> Int? {
        if attempt.hashTries > 20 || isSingle || attempt.key.isEmpty { return pickRoundRobin(&attempt, now: now) }
        while true {
            // Compatible with Cache::Memcached: ((crc32([REHASH] KEY) >> 16) & 0x7fff) + PREV_HASH.
            var crc = CRC32()
            if attempt.rehash > 0 { crc.update(String(attempt.rehash).utf8) }
            crc.update(attempt.key)
            attempt.hash &+= (crc.value >> 16) & 0x7FFF
            attempt.rehash += 1
            let index = weightedIndex(attempt.hash)
            if !attempt.tried.contains(index), !peers[index].isUnavailable(now: now) {
                claim(index, &attempt, now: now)
                return index
            }
            attempt.hashTries += 1
            if attempt.hashTries > 20 { return pickRoundRobin(&attempt, now: now) }
        }
    }

    mutating func pickConsistentHash(_ attempt: inout PeerAttempt, now: Int64) -> Int? {
        guard let ring, !ring.points.isEmpty else { return pickRoundRobin(&attempt, now: now) }
        if attempt.hashTries > 20 || primary.count < 2 || attempt.key.isEmpty {
            return pickRoundRobin(&attempt, now: now)
        }
        while true {
            let server = ring.points[Int(attempt.hash % UInt32(ring.points.count))].server
            // Several peers may share a server name (one name, several addresses): round robin among them.
            var best: Int?
            var total = 0
            for index in primary where peers[index].configuration.name == server
            && !attempt.tried.contains(index) && !peers[index].isUnavailable(now: now) {
                total += peers[index].addSmoothWeight()
                if best == nil || peers[index].currentWeight > peers[best!].currentWeight { best = index }
            }
            if let best {
                peers[best].currentWeight -= total
                claim(best, &attempt, now: now)
                return best
            }
            attempt.hash &+= 1
            attempt.hashTries += 1
            if attempt.hashTries > 20 { return pickRoundRobin(&attempt, now: now) }
        }
    }

    // MARK: random

    mutating func peekRandom() -> Int {
        var w = Int(random.next() % UInt64(max(1, totalWeight)))
        var position = 0
        while position < primary.count - 1, w >= peers[primary[position]].weight {
            w -= peers[primary[position]].weight
            position += 1
        }
        return primary[position]
    }

    mutating func pickRandom(_ attempt: inout PeerAttempt, two: Bool, now: Int64) -> Int? {
        if attempt.hashTries > 20 || isSingle { return pickRoundRobin(&attempt, now: now) }
        if !two {
            while true {
                let index = peekRandom()
                if !attempt.tried.contains(index), !peers[index].isUnavailable(now: now) {
                    claim(index, &attempt, now: now)
                    return index
                }
                attempt.hashTries += 1
                if attempt.hashTries > 20 { return pickRoundRobin(&attempt, now: now) }
            }
        }
        // Two distinct available peers at random; the one with fewer connections per weight wins.
        var first: Int?
        while true {
            let index = peekRandom()
            if index != first, !attempt.tried.contains(index), !peers[index].isUnavailable(now: now) {
                if let previous = first {
                    let chosen = peers[index].conns * peers[previous].weight
                        > peers[previous].conns * peers[index].weight ? previous : index
                    claim(chosen, &attempt, now: now)
                    return chosen
                }
                first = index
                continue
            }
            attempt.hashTries += 1
            if attempt.hashTries > 20 { return pickRoundRobin(&attempt, now: now) }
        }
    }
}
