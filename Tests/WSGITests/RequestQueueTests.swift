import Testing
@testable import WSGI

/// A sink no test delivers to: the queue only passes jobs around.
private struct UnusedSink: ResponseSink {
    func deliver(jobID: Int, parts: [ResponsePart], written: (@Sendable () -> Void)?, mayWait: Bool) {}
    func answerForServer(_ job: WSGIJob, status: String, then: @escaping @Sendable () -> Void) { then() }
}

private func job(_ id: Int) throws -> WSGIJob {
    let environ = try CGIEnvironment.build(
        head: RequestHeadInfo(method: "GET", uri: "/\(id)", headers: [("Host", "example.org")]),
        peer: .unix, server: .unix(path: "/tmp/test.sock"),
        settings: EnvironSettings(rootPath: "", trust: try ForwardedTrust(parsing: ForwardedTrust.gunicornDefault)))
    return WSGIJob(id: id, environ: environ, isHead: false, httpMinorVersion: 1, body: .empty, sink: UnusedSink())
}

@Test func theLoopClaimsTheAppOnlyWhenNothingRunsOrWaits() throws {
    let queue = RequestQueue(exclusive: true)
    #expect(queue.tryClaim())
    #expect(!queue.tryClaim())  // the loop's own request still runs
    queue.release()
    queue.push(try job(1))
    #expect(!queue.tryClaim())  // a queued request goes first, on the Python thread
    let popped = try #require(queue.pop())
    #expect(popped.job.id == 1 && !popped.continuing)
    #expect(!queue.tryClaim())  // the Python thread runs it
    queue.release()
    #expect(queue.tryClaim())
}

@Test func thePythonThreadWaitsWhileTheLoopRunsARequest() async throws {
    let queue = RequestQueue(exclusive: true)
    #expect(queue.tryClaim())
    queue.push(try job(2))
    let popped = Task.detached { queue.pop()?.job.id }
    try await Task.sleep(for: .milliseconds(100))
    #expect(queue.hasWaiting)  // not taken while the loop owns the app
    queue.release()
    #expect(await popped.value == 2)
    queue.close()
}

@Test func aHandedOverRequestPassesTheClaimToThePythonThread() throws {
    let queue = RequestQueue(exclusive: true)
    queue.push(try job(3))
    #expect(queue.tryClaim() == false)
    _ = queue.pop()  // job 3 runs on the Python thread…
    queue.release()
    #expect(queue.tryClaim())  // …then the loop starts job 4 and hands it over
    queue.handOver(try job(4))
    let popped = try #require(queue.pop())
    #expect(popped.job.id == 4 && popped.continuing)
    #expect(!queue.tryClaim())  // still owned until the Python thread releases it
    queue.release()
    #expect(queue.tryClaim())
}

@Test func aSharedQueueNeverLetsTheLoopClaim() throws {
    let queue = RequestQueue(exclusive: false)
    #expect(!queue.tryClaim())
    queue.push(try job(5))
    queue.push(try job(6))
    #expect(queue.pop()?.job.id == 5)
    #expect(queue.pop()?.job.id == 6)  // no claim: threads take jobs side by side
    queue.close()
    #expect(queue.pop() == nil)
}
