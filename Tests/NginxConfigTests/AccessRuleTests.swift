import Foundation
import Testing
@testable import NginxConfig

private func rules(_ lines: [(Bool, String)]) -> AccessRules {
    AccessRules(rules: lines.map { AccessRule.parse($0.1, allow: $0.0)!.rule })
}

@Test func parsesAddressesBlocksUnixAndAll() throws {
    #expect(AccessRule.parse("all", allow: false)?.rule.target == .all)
    #expect(AccessRule.parse("unix:", allow: true)?.rule.target == .unix)
    let block = try #require(AccessRule.parse("192.168.1.0/24", allow: true))
    #expect(block.rule.target == .network(address: [192, 168, 1, 0], mask: [255, 255, 255, 0]))
    #expect(!block.hostBitsSet)
    let odd = try #require(AccessRule.parse("10.1.2.3/8", allow: true))
    #expect(odd.hostBitsSet)
    #expect(odd.rule.target == .network(address: [10, 0, 0, 0], mask: [255, 0, 0, 0]))
    #expect(AccessRule.parse("10.0.0.0/12", allow: true)?.rule.target == .network(address: [10, 0, 0, 0], mask: [255, 240, 0, 0]))
    #expect(AccessRule.parse("2001:db8::/32", allow: true) != nil)
    for bad in ["300.1.1.1", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::1/129", "somewhere", "unix:/path", ""] {
        #expect(AccessRule.parse(bad, allow: true) == nil, "\(bad)")
    }
}

@Test func firstMatchingRuleDecidesAndNoMatchAllows() {
    let list = rules([(true, "127.0.0.1"), (false, "127.0.0.0/8"), (true, "::1"), (false, "unix:")])
    #expect(list.allows("127.0.0.1"))
    #expect(!list.allows("127.0.0.2"))
    #expect(list.allows("10.0.0.1"))          // no rule matches
    #expect(list.allows("::1"))
    #expect(list.allows("::2"))
    #expect(!list.allows("unix:"))
    // An IPv4-mapped client is matched by the IPv4 rules.
    #expect(!list.allows("::ffff:127.0.0.2"))
    #expect(list.allows("::ffff:127.0.0.1"))
    // `all` matches every family, in its place in the order.
    let denyAll = rules([(true, "10.0.0.0/8"), (false, "all"), (true, "127.0.0.1")])
    #expect(denyAll.allows("10.9.9.9"))
    #expect(!denyAll.allows("127.0.0.1"))
    #expect(!denyAll.allows("unix:"))
    #expect(!denyAll.allows("2001:db8::1"))
    let v6 = rules([(true, "2001:db8::/32"), (false, "all")])
    #expect(v6.allows("2001:db8:ffff::1"))
    #expect(!v6.allows("2001:db9::1"))
}

@Test func theNearestLevelWithRulesGivesTheWholeList() throws {
    let text = """
    events { }
    http {
        allow 10.0.0.0/8;
        deny all;
        server {
            listen 8080;
            location /inherits/ { }
            location /own/ { allow 127.0.0.1/8; }
        }
    }
    """
    let path = "/tmp/gantry-access-rules-\(getpid()).conf"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    defer { unlink(path) }
    let configuration = try ConfigurationLoader(configFile: path).load()
    #expect(configuration.warnings.map(\.message) == ["low address bits of 127.0.0.1/8 are meaningless"])
    let server = try #require(configuration.http?.servers.first)
    let inherits = try #require(server.locations.first { $0.match == .prefix("/inherits/", stopsRegexSearch: false) })
    let own = try #require(server.locations.first { $0.match == .prefix("/own/", stopsRegexSearch: false) })
    #expect(try AccessRules(scope: inherits.scope).rules.count == 2)
    #expect(!(try AccessRules(scope: inherits.scope).allows("127.0.0.1")))
    #expect(try AccessRules(scope: own.scope).rules.count == 1)
    #expect(try AccessRules(scope: own.scope).allows("192.0.2.1"))  // only `allow 127.0.0.0/8` here: no match allows
}
