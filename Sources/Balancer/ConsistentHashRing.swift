/// nginx's ketama-style ring for `hash KEY consistent`: 160 points per unit of
/// weight per server, each point `crc32(HOST \0 PORT PREV_HASH)` as
/// Cache::Memcached::Fast computes it, sorted, duplicates dropped.
struct ConsistentHashRing: Sendable {
    struct Point: Sendable {
        var hash: UInt32
        /// The server name the point belongs to.
        var server: String
    }

    private(set) var points: [Point] = []

    init(peers: [PeerConfiguration]) {
        for peer in peers where !peer.isBackup {
            let (host, port) = Self.hostAndPort(peer.name)
            var base = CRC32()
            base.update(host.utf8)
            base.update([0])
            base.update(port.utf8)
            var previous: UInt32 = 0
            for _ in 0..<(peer.weight * 160) {
                var crc = base
                crc.update([UInt8(previous & 0xFF), UInt8((previous >> 8) & 0xFF),
                            UInt8((previous >> 16) & 0xFF), UInt8(previous >> 24)])
                let hash = crc.value
                points.append(Point(hash: hash, server: peer.name))
                previous = hash
            }
        }
        points.sort { $0.hash < $1.hash }
        var unique: [Point] = []
        unique.reserveCapacity(points.count)
        for point in points where unique.last?.hash != point.hash { unique.append(point) }
        points = unique
    }

    /// nginx splits `unix:PATH` (no port), `HOST:PORT`, and a bare host (port "80").
    static func hostAndPort(_ name: String) -> (String, String) {
        if name.lowercased().hasPrefix("unix:") { return (String(name.dropFirst(5)), "") }
        if let colon = name.lastIndex(of: ":") {
            let port = name[name.index(after: colon)...]
            if port.allSatisfy({ $0.isASCII && $0.isNumber }) {
                return (String(name[..<colon]), String(port))
            }
        }
        return (name, "80")
    }

    /// Index of the first point whose hash is >= `hash` (wrapping to the count, which the caller takes modulo).
    func firstPoint(atOrAfter hash: UInt32) -> Int {
        var low = 0, high = points.count
        while low < high {
            let mid = (low + high) / 2
            if points[mid].hash < hash { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
