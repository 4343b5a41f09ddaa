/// The per-request side of balancing (nginx's `ngx_peer_connection_t` tries and
/// `tried` bitmap, plus the hash methods' state). One per proxied request,
/// passed back to `UpstreamBalancer` on every pick and release.
public struct PeerAttempt: Sendable {
    /// How many more peers this request may try (nginx's `peer.tries`).
    public internal(set) var triesLeft: Int
    /// The peer picked last, until released.
    public internal(set) var current: PeerID?
    var tried = TriedPeers()
    var inBackupTier = false

    /// `ip_hash`: the address bytes hashed (3 for IPv4, 16 for IPv6).
    let addressBytes: [UInt8]
    /// `hash`: the evaluated key.
    let key: [UInt8]
    var hash: UInt32 = 0
    var hashTries = 0
    var rehash = 0
    var ringStarted = false

    init(triesLeft: Int, addressBytes: [UInt8], key: [UInt8], initialHash: UInt32) {
        self.triesLeft = triesLeft
        self.addressBytes = addressBytes
        self.key = key
        self.hash = initialHash
    }
}

/// nginx's `tried` bitmap: the first 64 peers in one word (no allocation per request), the rest in a set.
struct TriedPeers: Sendable {
    private var low: UInt64 = 0
    private var high: Set<Int>?

    func contains(_ index: Int) -> Bool {
        index < 64 ? low & (1 << UInt64(index)) != 0 : high?.contains(index) ?? false
    }

    mutating func insert(_ index: Int) {
        if index < 64 {
            low |= 1 << UInt64(index)
        } else {
            high = (high ?? []).union([index])
        }
    }
}

/// The client address as `ip_hash` sees it.
public enum ClientAddressKey {
    /// First three octets of an IPv4 address, all 16 bytes of IPv6, three zero bytes for anything else (a Unix-socket client), as nginx.
    public static func ipHashBytes(ipv4: [UInt8]? = nil, ipv6: [UInt8]? = nil) -> [UInt8] {
        if let ipv4, ipv4.count == 4 { return Array(ipv4.prefix(3)) }
        if let ipv6, ipv6.count == 16 { return ipv6 }
        return [0, 0, 0]
    }

    /// Parses a dotted-quad IPv4 or textual IPv6 address (what `$remote_addr` holds) into `ip_hash` bytes.
    public static func ipHashBytes(text: String) -> [UInt8] {
        if let v4 = parseIPv4(text) { return ipHashBytes(ipv4: v4) }
        if let v6 = parseIPv6(text) { return ipHashBytes(ipv6: v6) }
        return [0, 0, 0]
    }

    static func parseIPv4(_ text: some StringProtocol) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    private static func splitOnDoubleColon(_ text: String) -> [String] {
        var parts: [String] = []
        var current = ""
        var previousWasColon = false
        for character in text {
            if character == ":" && previousWasColon {
                current.removeLast()
                parts.append(current)
                current = ""
                previousWasColon = false
                continue
            }
            current.append(character)
            previousWasColon = character == ":"
        }
        parts.append(current)
        return parts
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        var text = Substring(text)
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }
        guard text.contains(":") else { return nil }
        var tail: [UInt8] = []
        // An embedded IPv4 suffix (`::ffff:1.2.3.4`).
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = parseIPv4(text[text.index(after: lastColon)...]) else { return nil }
            tail = v4
            text = text[...lastColon]
            if text.hasSuffix("::") { } else { text = text.dropLast() }
        }
        let halves = splitOnDoubleColon(String(text))
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            for group in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !group.isEmpty, group.count <= 4, let value = UInt16(group, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        guard let head = groups(halves[0]) else { return nil }
        let rest = halves.count == 2 ? groups(halves[1]) : []
        guard let rest else { return nil }
        let wanted = 8 - tail.count / 2
        var all: [UInt16]
        if halves.count == 2 {
            guard head.count + rest.count < wanted else { return nil }
            all = head + Array(repeating: 0, count: wanted - head.count - rest.count) + rest
        } else {
            guard head.count == wanted else { return nil }
            all = head
        }
        var bytes: [UInt8] = []
        for group in all { bytes.append(UInt8(group >> 8)); bytes.append(UInt8(group & 0xFF)) }
        return bytes + tail
    }
}
