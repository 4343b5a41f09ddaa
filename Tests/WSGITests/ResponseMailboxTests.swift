import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import WSGI

/// Records which jobs were delivered, in order (on the loop).
private final class Recorder: ResponseRecipient, Sendable {
    let delivered = Mutex<[Int]>([])
    var jobs: [Int] { delivered.withLock { $0 } }
    func deliver(jobID: Int, parts: [ResponsePart], written: (@Sendable () -> Void)?) {
        delivered.withLock { $0.append(jobID) }
        written?()
    }
}

private final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set(_ on: Bool) { value.withLock { $0 = on } }
}

/// Polls (at most 5 s): the mailbox's promises are "eventually", never a timing.
private func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<500 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

@Test func mailboxDeliversInOrderAndNeverStrandsAResponseThatMayWait() async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    let underLoad = Flag()
    let mailbox = ResponseMailbox(eventLoop: loop, underLoad: { underLoad.isSet })
    let recorder = Recorder()
    let recipient = try await loop.submit { NIOLoopBound<any ResponseRecipient>(recorder, eventLoop: loop) }.get()
    func post(_ id: Int, mayWait: Bool) {
        mailbox.post(.init(handler: recipient, jobID: id, parts: [.end(complete: true)], written: nil), mayWait: mayWait)
    }

    // Idle: a response wakes the loop at once, whether or not it may wait.
    post(1, mayWait: true)
    #expect(await eventually { recorder.jobs == [1] })
    #expect(!mailbox.isWatching)

    // Under load, a drain starts the watch; responses that may wait are written by its ticks.
    underLoad.set(true)
    post(2, mayWait: false)
    #expect(await eventually { recorder.jobs == [1, 2] && mailbox.isWatching })
    for id in 3...5 { post(id, mayWait: true) }
    #expect(await eventually { recorder.jobs == [1, 2, 3, 4, 5] })

    // Load gone: the watch stops, and the next response wakes the loop again.
    underLoad.set(false)
    #expect(await eventually { !mailbox.isWatching })
    post(6, mayWait: true)
    #expect(await eventually { recorder.jobs == [1, 2, 3, 4, 5, 6] })
    try await group.shutdownGracefully()
}

/// A worker holding connections waits before accepting, longer the more it holds, bounded.
@Test func acceptDelayGrowsWithHeldConnectionsAndIsBounded() {
    #expect(ConnectionAcceptor.acceptDelay(openConnections: 0) == 0)
    #expect(ConnectionAcceptor.acceptDelay(openConnections: 5) == 100)
    #expect(ConnectionAcceptor.acceptDelay(openConnections: 16) == 320)
    #expect(ConnectionAcceptor.acceptDelay(openConnections: 5000) == 320)
}
