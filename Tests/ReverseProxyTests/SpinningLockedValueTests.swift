import Foundation
import Testing
@testable import ReverseProxy

/// Two threads increment one counter behind the lock: none of the increments may be lost.
@Test func spinningLockedValueKeepsEveryUpdateOfTwoThreads() {
    let counter = SpinningLockedValue(0)
    let rounds = 200_000
    let done = DispatchGroup()
    for _ in 0..<2 {
        done.enter()
        Thread {
            for _ in 0..<rounds { counter.withLockedValue { $0 += 1 } }
            done.leave()
        }.start()
    }
    done.wait()
    #expect(counter.withLockedValue { $0 } == 2 * rounds)
}
