import Testing
@testable import Balancer

@Suite struct HealthCheckStateTests {
    @Test func consecutiveFailsMarkDownAndPassesMarkUp() {
        var state = HealthCheckState(fails: 2, passes: 3)
        #expect(state.isHealthy)
        #expect(state.record(passed: false) == nil)
        #expect(state.record(passed: true) == nil)  // a pass resets the fail streak
        #expect(state.record(passed: false) == nil)
        #expect(state.record(passed: false) == .becameUnhealthy)
        #expect(!state.isHealthy)
        #expect(state.record(passed: false) == nil)
        #expect(state.record(passed: true) == nil)
        #expect(state.record(passed: true) == nil)
        #expect(state.record(passed: true) == .becameHealthy)
        #expect(state.isHealthy)
    }

    @Test func statusVerdict() {
        #expect(HealthCheckState.passes(status: 200))
        #expect(HealthCheckState.passes(status: 302))
        #expect(!HealthCheckState.passes(status: 404))
        #expect(!HealthCheckState.passes(status: 503))
    }
}

@Suite struct WaitQueueTests {
    @Test func boundedFirstInFirstOut() {
        var queue = WaitQueue<Int>(capacity: 2, timeout: 500)
        #expect(queue.enqueue(1, now: 0) == .queued(deadline: 500))
        #expect(queue.enqueue(2, now: 10) == .queued(deadline: 510))
        #expect(queue.enqueue(3, now: 20) == .full)
        #expect(queue.next() == 1)
        #expect(queue.enqueue(3, now: 30) == .queued(deadline: 530))
        #expect(queue.next() == 2)
        #expect(queue.next() == 3)
        #expect(queue.next() == nil)
    }

    @Test func expiryAndCancel() {
        var queue = WaitQueue<String>(capacity: 10, timeout: 100)
        _ = queue.enqueue("a", now: 0)
        _ = queue.enqueue("b", now: 50)
        _ = queue.enqueue("c", now: 60)
        #expect(queue.expire(now: 99) == [])
        #expect(queue.nextDeadline == 100)
        #expect(queue.expire(now: 150) == ["a", "b"])
        let cancelled = queue.cancel("c")
        let cancelledAgain = queue.cancel("c")
        #expect(cancelled)
        #expect(!cancelledAgain)
        #expect(queue.isEmpty)
    }

    @Test func manyEntriesCompact() {
        var queue = WaitQueue<Int>(capacity: 1000, timeout: 1)
        for n in 0..<500 { _ = queue.enqueue(n, now: 0) }
        for n in 0..<400 { #expect(queue.next() == n) }
        #expect(queue.count == 100)
        #expect(queue.next() == 400)
    }
}

@Suite struct TriedPeersTests {
    /// The first 64 peers live in one word, the others in a set; both answer the same.
    @Test func bitsAndOverflow() {
        var tried = TriedPeers()
        for index in [0, 5, 63, 64, 200] { #expect(!tried.contains(index)) }
        for index in [0, 63, 64, 200] { tried.insert(index) }
        for index in [0, 63, 64, 200] { #expect(tried.contains(index)) }
        for index in [1, 62, 65, 199] { #expect(!tried.contains(index)) }
    }
}
