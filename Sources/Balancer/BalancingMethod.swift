/// The load-balancing methods of nginx's `upstream` block.
public enum BalancingMethod: Sendable, Hashable {
    /// The default: nginx's smooth weighted round robin.
    case roundRobin
    /// `least_conn`: fewest active connections relative to weight; ties by round robin.
    case leastConn
    /// `ip_hash`: first three octets of an IPv4 client, the whole IPv6 address.
    case ipHash
    /// `hash KEY [consistent]`; the key is evaluated per request by the caller.
    case hash(consistent: Bool)
    /// `random [two [least_conn]]`.
    case random(two: Bool)

    /// Whether `server ... backup` is allowed with this method (nginx allows it with round robin and least_conn only).
    public var supportsBackup: Bool {
        switch self {
        case .roundRobin, .leastConn: return true
        case .ipHash, .hash, .random: return false
        }
    }
}
