#if canImport(Glibc)
import Glibc
#endif

/// One `allow` / `deny` line of ngx_http_access_module: `all`, `unix:`, or an IPv4/IPv6 address
/// or CIDR block. Pure: parsed and matched without sockets.
public struct AccessRule: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        case all
        case unix
        /// Network bytes (4 or 16) and the mask of the same length.
        case network(address: [UInt8], mask: [UInt8])
    }

    public var allow: Bool
    public var target: Target

    public struct Parsed: Sendable {
        public var rule: AccessRule
        /// nginx warns `low address bits of X are meaningless` (and masks them).
        public var hostBitsSet: Bool
    }

    /// `allow VALUE` / `deny VALUE`; nil when VALUE is not `all`, `unix:`, an address or a CIDR block.
    public static func parse(_ value: String, allow: Bool) -> Parsed? {
        if value == "all" { return Parsed(rule: AccessRule(allow: allow, target: .all), hostBitsSet: false) }
        if value == "unix:" { return Parsed(rule: AccessRule(allow: allow, target: .unix), hostBitsSet: false) }
        let parts = value.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = addressBytes(String(parts[0])) else { return nil }
        let bits = address.count * 8
        var prefix = bits
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].allSatisfy(\.isASCII), parts[1].allSatisfy(\.isNumber),
                  let length = Int(parts[1]), length <= bits else { return nil }
            prefix = length
        }
        let mask = (0..<address.count).map { index -> UInt8 in
            let covered = max(0, min(8, prefix - index * 8))
            return covered == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - covered))
        }
        let masked = zip(address, mask).map { $0 & $1 }
        return Parsed(rule: AccessRule(allow: allow, target: .network(address: masked, mask: mask)), hostBitsSet: masked != address)
    }

    /// 4 bytes for an IPv4 address, 16 for IPv6; nil otherwise.
    public static func addressBytes(_ text: String) -> [UInt8]? {
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

/// The `allow`/`deny` rules of a location, in order: the first that matches the client decides;
/// none matching lets the request through (nginx's access phase).
public struct AccessRules: Sendable, Equatable {
    public var rules: [AccessRule]

    public init(rules: [AccessRule]) { self.rules = rules }

    /// The nearest level with any `allow`/`deny` gives the whole list (nginx merges the arrays so).
    public init(scope: ConfigScope) throws(ConfigError) {
        var rules: [AccessRule] = []
        for directive in scope.effectiveList(anyOf: ["allow", "deny"]) {
            guard let parsed = AccessRule.parse(directive.values[0], allow: directive.name == "allow") else {
                throw ConfigError("invalid parameter \"\(directive.values[0])\"", at: directive.location)
            }
            rules.append(parsed.rule)
        }
        self.rules = rules
    }

    public var isEmpty: Bool { rules.isEmpty }

    /// Whether `client` (an address as text, or `unix:`) may go on.
    public func allows(_ client: String) -> Bool {
        var bytes: [UInt8]?
        let isUnix = client == "unix:" || client.hasPrefix("unix:")
        if !isUnix, var address = AccessRule.addressBytes(client) {
            // An IPv4-mapped IPv6 client is matched against the IPv4 rules, as nginx does.
            if address.count == 16, address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xFF, address[11] == 0xFF {
                address = Array(address[12...])
            }
            bytes = address
        }
        for rule in rules {
            switch rule.target {
            case .all:
                return rule.allow
            case .unix:
                if isUnix { return rule.allow }
            case .network(let network, let mask):
                guard let bytes, bytes.count == network.count else { continue }
                if zip(zip(bytes, mask), network).allSatisfy({ $0.0 & $0.1 == $1 }) { return rule.allow }
            }
        }
        return true
    }
}
