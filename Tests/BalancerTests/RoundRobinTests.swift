import Testing
@testable import Balancer

/// Picks `count` times, releasing each pick at once with `outcome`, and returns the names chosen.
func run(_ balancer: inout UpstreamBalancer, count: Int, now: Int64 = 1_000_000,
         outcome: UpstreamBalancer.Outcome = .success, address: [UInt8] = [0, 0, 0], key: String = "") -> [String] {
    var names: [String] = []
    for _ in 0..<count {
        var attempt = balancer.beginAttempt(clientAddress: address, hashKey: key)
        guard let peer = balancer.pick(&attempt, now: now) else { names.append("-"); continue }
        names.append(balancer.configuration(of: peer).name)
        balancer.release(&attempt, outcome: outcome, now: now)
    }
    return names
}

func tally(_ names: [String]) -> [String: Int] {
    names.reduce(into: [:]) { $0[$1, default: 0] += 1 }
}

@Suite struct RoundRobinTests {
    @Test func weightedSplitIsExactAndSmooth() {
        var balancer = UpstreamBalancer(peers: [
            PeerConfiguration(name: "a", weight: 3), PeerConfiguration(name: "b", weight: 1),
        ])
        let names = run(&balancer, count: 400)
        #expect(tally(names) == ["a": 300, "b": 100])
        // nginx's smooth order for 3:1 is a a b a, repeated; never b twice in a row.
        #expect(Array(names.prefix(8)) == ["a", "a", "b", "a", "a", "a", "b", "a"])
    }

    @Test func smoothOrderForFiveOneOne() {
        // The example from nginx's commit introducing smooth weighted round robin.
        var balancer = UpstreamBalancer(peers: [
            PeerConfiguration(name: "a", weight: 5), PeerConfiguration(name: "b", weight: 1),
            PeerConfiguration(name: "c", weight: 1),
        ])
        #expect(run(&balancer, count: 7) == ["a", "a", "b", "a", "c", "a", "a"])
    }

    @Test func equalWeightsRotate() {
        var balancer = UpstreamBalancer(peers: ["a", "b", "c"].map { PeerConfiguration(name: $0) })
        #expect(run(&balancer, count: 6) == ["a", "b", "c", "a", "b", "c"])
    }

    @Test func downPeerIsNeverChosen() {
        var balancer = UpstreamBalancer(peers: [
            PeerConfiguration(name: "a"), PeerConfiguration(name: "b", isDown: true), PeerConfiguration(name: "c"),
        ])
        #expect(tally(run(&balancer, count: 10)) == ["a": 5, "c": 5])
    }

    @Test func failedPeerIsSkippedForFailTimeoutThenTriedAgain() {
        var balancer = UpstreamBalancer(peers: [
            PeerConfiguration(name: "a", maxFails: 1, failTimeout: 10_000), PeerConfiguration(name: "b"),
        ])
        var attempt = balancer.beginAttempt()
        let first = balancer.pick(&attempt, now: 1_000)
        #expect(first.map { balancer.configuration(of: $0).name } == "a")
        #expect(balancer.release(&attempt, outcome: .failure, now: 1_000) == .temporarilyDisabled(PeerID(0)))
        // The same request moves on to b (proxy_next_upstream) and never back to a.
        #expect(attempt.triesLeft == 1)
        let second = balancer.pick(&attempt, now: 1_000)
        #expect(second.map { balancer.configuration(of: $0).name } == "b")
        balancer.release(&attempt, outcome: .success, now: 1_000)
        // Within fail_timeout every request goes to b.
        #expect(run(&balancer, count: 5, now: 10_999) == ["b", "b", "b", "b", "b"])
        // Past it, a is tried again; answering, it is live again and shares the load.
        let later = run(&balancer, count: 4, now: 11_001)
        #expect(later.contains("a"))
        #expect(balancer.failures(of: PeerID(0)) == 0)
        #expect(tally(run(&balancer, count: 4, now: 11_002)) == ["a": 2, "b": 2])
    }

    @Test func maxFailsCountsFailuresBeforeDisabling() {
        var balancer = UpstreamBalancer(peers: [
            PeerConfiguration(name: "a", maxFails: 3, failTimeout: 30_000), PeerConfiguration(name: "b", maxFails: 3),
        ])
        for _ in 0..<2 { fail(&balancer, peerNamed: "a", now: 100) }
        #expect(run(&balancer, count: 20, now: 200).contains("a"))
        fail(&balancer, peerNamed: "a", now: 300)
        #expect(!run(&balancer, count: 20, now: 400).contains("a"))
    }

    @Test func maxFailsZeroNeverDisables() {
        var balancer = UpstreamBalancer(peers: [
            PeerConfiguration(name: "a", maxFails: 0), PeerConfiguration(name: "b", maxFails: 0),
        ])
        for _ in 0..<5 { fail(&balancer, peerNamed: "a", now: 100) }
        #expect(run(&balancer, count: 4, now: 200).contains("a"))
    }

    @Test func allPeersFailedGivesNoPeerThenRecovers() {
        var balancer = UpstreamBalancer(peers: [PeerConfiguration(name: "a"), PeerConfiguration(name: "b")])
        fail(&balancer, peerNamed: "a", now: 100)
        fail(&balancer, peerNamed: "b", now: 100)
        var attempt = balancer.beginAttempt()
        #expect(balancer.pick(&attempt, now: 200) == nil)  // "no live upstreams": 502
        // nginx then forgets the failures so the next request tries the servers again.
        // (Their effective weights climb back one step per pick, as nginx's do.)
        let next = run(&balancer, count: 6, now: 300)
        #expect(!next.contains("-"))
        #expect(Set(next) == ["a", "b"])
    }

    @Test func singleServerFailuresAreNotCounted() {
        var balancer = UpstreamBalancer(peers: [PeerConfiguration(name: "only", maxFails: 1)])
        for _ in 0..<3 {
            var attempt = balancer.beginAttempt()
            #expect(balancer.pick(&attempt, now: 100) != nil)
            balancer.release(&attempt, outcome: .failure, now: 100)
            #expect(attempt.triesLeft == 0)
        }
        #expect(run(&balancer, count: 1, now: 101) == ["only"])
    }

    @Test func backupOnlyWhenEveryPrimaryIsUnavailable() {
        var balancer = UpstreamBalancer(peers: [
            PeerConfiguration(name: "a"), PeerConfiguration(name: "b"), PeerConfiguration(name: "spare", isBackup: true),
        ])
        #expect(!run(&balancer, count: 20).contains("spare"))
        fail(&balancer, peerNamed: "a", now: 100)
        #expect(!run(&balancer, count: 5, now: 200).contains("spare"))
        fail(&balancer, peerNamed: "b", now: 100)
        #expect(run(&balancer, count: 3, now: 200) == ["spare", "spare", "spare"])
        // Primaries return once their fail_timeout has passed.
        #expect(!run(&balancer, count: 4, now: 20_000).contains("spare"))
    }

    @Test func maxConnsSkipsFullPeersAndNoneWhenAllFull() {
        var balancer = UpstreamBalancer(peers: [
            PeerConfiguration(name: "a", maxConns: 1), PeerConfiguration(name: "b", maxConns: 1),
        ])
        var first = balancer.beginAttempt()
        var second = balancer.beginAttempt()
        var third = balancer.beginAttempt()
        let p1 = balancer.pick(&first, now: 0)
        let p2 = balancer.pick(&second, now: 0)
        #expect(p1 != nil && p2 != nil && p1 != p2)
        #expect(balancer.pick(&third, now: 0) == nil)
        #expect(balancer.hasLivePeerAtCapacity(now: 0))
        balancer.release(&first, outcome: .success, now: 0)
        var fourth = balancer.beginAttempt()
        #expect(balancer.pick(&fourth, now: 0) == p1)
    }

    @Test func triesAreCappedByNextUpstreamTries() {
        let balancer = UpstreamBalancer(peers: ["a", "b", "c", "d"].map { PeerConfiguration(name: $0) }
            + [PeerConfiguration(name: "e", isDown: true)])
        #expect(balancer.beginAttempt().triesLeft == 4)
        #expect(balancer.beginAttempt(maxTries: 2).triesLeft == 2)
    }

    @Test func healthCheckedDownPeerIsSkipped() {
        var balancer = UpstreamBalancer(peers: [PeerConfiguration(name: "a"), PeerConfiguration(name: "b")])
        balancer.setHealthy(PeerID(0), false)
        #expect(run(&balancer, count: 4) == ["b", "b", "b", "b"])
        balancer.setHealthy(PeerID(0), true)
        #expect(tally(run(&balancer, count: 4)) == ["a": 2, "b": 2])
    }
}

/// Sends one request to the peer named `name` (picking until it comes up) and fails it.
func fail(_ balancer: inout UpstreamBalancer, peerNamed name: String, now: Int64) {
    for _ in 0..<50 {
        var attempt = balancer.beginAttempt()
        guard let peer = balancer.pick(&attempt, now: now) else { return }
        let hit = balancer.configuration(of: peer).name == name
        balancer.release(&attempt, outcome: hit ? .failure : .success, now: now)
        if hit { return }
    }
    Issue.record("peer \(name) never picked")
}
