import Testing
@testable import Balancer

@Suite struct LeastConnTests {
    @Test func choosesFewestActiveConnections() {
        var balancer = UpstreamBalancer(peers: ["a", "b", "c"].map { PeerConfiguration(name: $0) }, method: .leastConn)
        // Hold three requests open: one lands on each peer.
        var held: [PeerAttempt] = []
        var names: [String] = []
        for _ in 0..<3 {
            var attempt = balancer.beginAttempt()
            names.append(balancer.configuration(of: balancer.pick(&attempt, now: 0)!).name)
            held.append(attempt)
        }
        #expect(names.sorted() == ["a", "b", "c"])
        // Finish b's request: the next one must go to b, the only idle peer.
        let bIndex = names.firstIndex(of: "b")!
        balancer.release(&held[bIndex], outcome: .success, now: 0)
        var next = balancer.beginAttempt()
        #expect(balancer.configuration(of: balancer.pick(&next, now: 0)!).name == "b")
    }

    @Test func weightScalesConnectionCount() {
        var balancer = UpstreamBalancer(peers: [
            PeerConfiguration(name: "big", weight: 2), PeerConfiguration(name: "small", weight: 1),
        ], method: .leastConn)
        var held: [PeerAttempt] = []
        var names: [String] = []
        for _ in 0..<6 {
            var attempt = balancer.beginAttempt()
            names.append(balancer.configuration(of: balancer.pick(&attempt, now: 0)!).name)
            held.append(attempt)
        }
        #expect(tally(names) == ["big": 4, "small": 2])
    }

    @Test func tiesAreBrokenByWeightedRoundRobin() {
        var balancer = UpstreamBalancer(peers: [
            PeerConfiguration(name: "a", weight: 3), PeerConfiguration(name: "b", weight: 1),
        ], method: .leastConn)
        // Every request finishes before the next: always a tie at zero, so the split is round robin's.
        #expect(tally(run(&balancer, count: 400)) == ["a": 300, "b": 100])
    }
}

@Suite struct IPHashTests {
    @Test func sameSlash24StaysOnOneServer() {
        var balancer = UpstreamBalancer(peers: ["a", "b", "c"].map { PeerConfiguration(name: $0) }, method: .ipHash)
        let first = run(&balancer, count: 1, address: ClientAddressKey.ipHashBytes(text: "10.1.2.3"))[0]
        for host in 0..<50 {
            let name = run(&balancer, count: 1, address: ClientAddressKey.ipHashBytes(text: "10.1.2.\(host)"))[0]
            #expect(name == first)
        }
    }

    @Test func differentNetworksSpread() {
        var balancer = UpstreamBalancer(peers: ["a", "b", "c"].map { PeerConfiguration(name: $0) }, method: .ipHash)
        var seen: Set<String> = []
        for net in 0..<60 {
            seen.formUnion(run(&balancer, count: 1, address: ClientAddressKey.ipHashBytes(text: "10.\(net).7.1")))
        }
        #expect(seen == ["a", "b", "c"])
    }

    @Test func matchesNginxHashWalk() {
        // hash = 89; for each of 3 bytes: hash = (hash * 113 + byte) % 6271; peer = hash % 3 (equal weights).
        var expected = 89
        for byte in [192, 168, 0] { expected = (expected * 113 + byte) % 6271 }
        var balancer = UpstreamBalancer(peers: ["a", "b", "c"].map { PeerConfiguration(name: $0) }, method: .ipHash)
        let name = run(&balancer, count: 1, address: ClientAddressKey.ipHashBytes(text: "192.168.0.77"))[0]
        #expect(name == ["a", "b", "c"][expected % 3])
    }

    @Test func downServerMovesOnlyItsClients() {
        let peers = ["a", "b", "c"].map { PeerConfiguration(name: $0) }
        var before = UpstreamBalancer(peers: peers, method: .ipHash)
        var after = UpstreamBalancer(peers: peers, method: .ipHash)
        after.setHealthy(PeerID(2), false)
        for net in 0..<100 {
            let address = ClientAddressKey.ipHashBytes(text: "172.\(net).1.1")
            let old = run(&before, count: 1, address: address)[0]
            let new = run(&after, count: 1, address: address)[0]
            if old != "c" { #expect(new == old) } else { #expect(new != "c") }
        }
    }

    @Test func ipv6UsesWholeAddress() {
        #expect(ClientAddressKey.ipHashBytes(text: "2001:db8::1").count == 16)
        #expect(ClientAddressKey.ipHashBytes(text: "2001:db8::1") != ClientAddressKey.ipHashBytes(text: "2001:db8::2"))
        #expect(ClientAddressKey.ipHashBytes(text: "::ffff:10.0.0.1").count == 16)
        #expect(ClientAddressKey.ipHashBytes(text: "10.9.8.7") == [10, 9, 8])
        #expect(ClientAddressKey.ipHashBytes(text: "unix:") == [0, 0, 0])
    }
}

@Suite struct HashTests {
    @Test func crc32MatchesTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }

    @Test func sameKeySameServer() {
        var balancer = UpstreamBalancer(peers: ["a", "b", "c"].map { PeerConfiguration(name: $0) },
                                        method: .hash(consistent: false))
        for key in ["/x", "/y", "/users/42"] {
            let names = run(&balancer, count: 20, key: key)
            #expect(Set(names).count == 1)
        }
        var seen: Set<String> = []
        for n in 0..<60 { seen.formUnion(run(&balancer, count: 1, key: "/item/\(n)")) }
        #expect(seen == ["a", "b", "c"])
    }

    @Test func consistentHashKeepsKeysWhenAServerLeaves() {
        let peers = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"].map { PeerConfiguration(name: $0) }
        var whole = UpstreamBalancer(peers: peers, method: .hash(consistent: true))
        var withoutThird = UpstreamBalancer(peers: peers, method: .hash(consistent: true))
        withoutThird.setHealthy(PeerID(2), false)
        var moved = 0
        var onThird = 0
        for n in 0..<300 {
            let key = "/k/\(n)"
            let before = run(&whole, count: 1, key: key)[0]
            let after = run(&withoutThird, count: 1, key: key)[0]
            #expect(run(&whole, count: 3, key: key) == [before, before, before])
            if before == "10.0.0.3:80" { onThird += 1; #expect(after != before) }
            else if after != before { moved += 1 }
        }
        #expect(moved == 0)
        #expect(onThird > 50 && onThird < 150)
    }

    @Test func ringHas160PointsPerWeight() {
        let ring = ConsistentHashRing(peers: [
            PeerConfiguration(name: "a:1", weight: 2), PeerConfiguration(name: "unix:/s.sock"),
        ])
        #expect(ring.points.count <= 480 && ring.points.count > 470)
        #expect(ConsistentHashRing.hostAndPort("unix:/s.sock") == ("/s.sock", ""))
        #expect(ConsistentHashRing.hostAndPort("example.com") == ("example.com", "80"))
        #expect(ConsistentHashRing.hostAndPort("[::1]:8080") == ("[::1]", "8080"))
    }

    @Test func emptyKeyFallsBackToRoundRobin() {
        var balancer = UpstreamBalancer(peers: ["a", "b"].map { PeerConfiguration(name: $0) },
                                        method: .hash(consistent: true))
        #expect(run(&balancer, count: 4, key: "") == ["a", "b", "a", "b"])
    }
}

@Suite struct RandomTests {
    @Test func randomFollowsWeightsRoughly() {
        var balancer = UpstreamBalancer(peers: [
            PeerConfiguration(name: "a", weight: 3), PeerConfiguration(name: "b", weight: 1),
        ], method: .random(two: false), random: SplitMix64(seed: 42))
        let counts = tally(run(&balancer, count: 4000))
        #expect((2800...3200).contains(counts["a"] ?? 0))
    }

    @Test func twoChoicesPrefersTheLessLoaded() {
        var balancer = UpstreamBalancer(peers: ["a", "b"].map { PeerConfiguration(name: $0) },
                                        method: .random(two: true), random: SplitMix64(seed: 7))
        // Pin three requests on whichever peer comes first; then all new ones must go to the other.
        var held: [PeerAttempt] = []
        var first = balancer.beginAttempt()
        let busy = balancer.pick(&first, now: 0)!
        held.append(first)
        for _ in 0..<10 {
            var attempt = balancer.beginAttempt()
            let chosen = balancer.pick(&attempt, now: 0)!
            #expect(chosen != busy)
            balancer.release(&attempt, outcome: .success, now: 0)
        }
    }
}
