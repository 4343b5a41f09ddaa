/// One `server` line of an `upstream` block, as the balancer needs it.
///
/// Times are milliseconds of a monotonic clock the caller owns, so the
/// balancer stays pure and tests move time by hand.
public struct PeerConfiguration: Sendable, Hashable {
    /// The server as written (`127.0.0.1:8000`, `unix:/run/app.sock`); consistent hashing hashes this text, as nginx does.
    public var name: String
    public var weight: Int
    /// Failures within `failTimeout` that take the server out for `failTimeout`; 0 disables the accounting.
    public var maxFails: Int
    public var failTimeout: Int64
    /// Most concurrent connections; 0 means no limit.
    public var maxConns: Int
    public var isBackup: Bool
    public var isDown: Bool

    public init(name: String, weight: Int = 1, maxFails: Int = 1, failTimeout: Int64 = 10_000,
                maxConns: Int = 0, isBackup: Bool = false, isDown: Bool = false) {
        self.name = name
        self.weight = max(1, weight)
        self.maxFails = maxFails
        self.failTimeout = failTimeout
        self.maxConns = maxConns
        self.isBackup = isBackup
        self.isDown = isDown
    }
}

/// Identifies a peer within one `UpstreamBalancer` (its position in the configured list).
public struct PeerID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var index: Int
    public init(_ index: Int) { self.index = index }
    public static func < (lhs: PeerID, rhs: PeerID) -> Bool { lhs.index < rhs.index }
    public var description: String { "#\(index)" }
}

/// The live state nginx keeps per peer (`ngx_http_upstream_rr_peer_t`).
struct PeerState: Sendable {
    let configuration: PeerConfiguration
    var currentWeight = 0
    var effectiveWeight: Int
    var conns = 0
    var fails = 0
    /// When the last failure happened.
    var accessed: Int64 = 0
    /// When the peer was last chosen after its fail window, or last failed.
    var checked: Int64 = 0
    /// Cleared by active health checks.
    var healthy = true

    init(_ configuration: PeerConfiguration) {
        self.configuration = configuration
        self.effectiveWeight = configuration.weight
    }

    var weight: Int { configuration.weight }

    /// Whether nginx's selection loops would skip this peer (down, failed recently, or full).
    func isUnavailable(now: Int64) -> Bool {
        if configuration.isDown || !healthy { return true }
        if configuration.maxFails > 0, fails >= configuration.maxFails,
           now - checked <= configuration.failTimeout {
            return true
        }
        if configuration.maxConns > 0, conns >= configuration.maxConns { return true }
        return false
    }

    /// Same as `isUnavailable` but ignoring `max_conns`: tells "busy" apart from "dead" for the wait queue.
    func isDead(now: Int64) -> Bool {
        if configuration.isDown || !healthy { return true }
        return configuration.maxFails > 0 && fails >= configuration.maxFails
            && now - checked <= configuration.failTimeout
    }

    /// The smooth weighted round robin step shared by several methods.
    mutating func addSmoothWeight() -> Int {
        currentWeight += effectiveWeight
        let added = effectiveWeight
        if effectiveWeight < weight { effectiveWeight += 1 }
        return added
    }
}
