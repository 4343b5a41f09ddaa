#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Who may tell us the client's address and scheme (`--forwarded-allow-ips`).
/// Unix socket peers are always trusted, as gunicorn does: only a local process
/// (the front) can connect there.
public struct ForwardedTrust: Sendable, Equatable {
    struct Network: Sendable, Equatable {
        var address: [UInt8]
        var prefixLength: Int
        func contains(_ candidate: [UInt8]) -> Bool {
            guard candidate.count == address.count else { return false }
            var remaining = prefixLength
            for index in 0..<address.count where remaining > 0 {
                let bits = min(8, remaining)
                let mask: UInt8 = bits == 8 ? 0xFF : ~(0xFF >> UInt8(bits))
                if candidate[index] & mask != address[index] & mask { return false }
                remaining -= bits
            }
            return true
        }
    }

    var trustsEveryone = false
    var networks: [Network] = []

    public static let gunicornDefault = "127.0.0.1,::1"

    public init(parsing list: String) throws(WorkerConfigurationError) {
        for item in list.split(separator: ",").map({ String($0).trimmingSpaces }) where !item.isEmpty {
            if item == "*" { trustsEveryone = true; continue }
            if item == "unix" { continue }
            var addressText = item
            var prefix: Int?
            if let slash = item.firstIndex(of: "/") {
                addressText = String(item[..<slash])
                guard let bits = Int(item[item.index(after: slash)...]) else { throw .invalidForwardedAddress(item) }
                prefix = bits
            }
            guard let address = Self.parseIP(addressText) else { throw .invalidForwardedAddress(item) }
            let maximum = address.count * 8
            let bits = prefix ?? maximum
            guard (0...maximum).contains(bits) else { throw .invalidForwardedAddress(item) }
            networks.append(Network(address: address, prefixLength: bits))
        }
    }

    public func trusts(_ peer: PeerAddress) -> Bool {
        switch peer {
        case .unix: return true
        case .inet(let ip, _):
            if trustsEveryone { return true }
            guard let address = Self.parseIP(ip) else { return false }
            if networks.contains(where: { $0.contains(address) }) { return true }
            // An IPv4-mapped IPv6 peer (::ffff:127.0.0.1) matches its IPv4 form.
            if address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xFF, address[11] == 0xFF {
                let v4 = Array(address[12...])
                return networks.contains(where: { $0.contains(v4) })
            }
            return false
        }
    }

    /// The 4 or 16 bytes of a textual IP address.
    static func parseIP(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

extension String {
    var trimmingSpaces: String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view.removeFirst() }
        while let last = view.last, last == " " || last == "\t" { view.removeLast() }
        return String(view)
    }
}
