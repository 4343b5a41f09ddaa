import NIOCore
import Synchronization

/// What a `ResponseMailbox` hands response parts to, on the loop (a connection).
protocol ResponseRecipient: AnyObject {
    func deliver(jobID: Int, parts: [ResponsePart], written: (@Sendable () -> Void)?)
}

/// Response parts on their way from the Python threads to the worker's event
/// loop. Responses that finish while the loop has not yet run the last hand-over
/// ride on it: one `execute` (and at most one wake-up of the loop) for all of
/// them, instead of one task per response.
///
/// Under load a finished response may also *wait* (`mayWait`) for the next one
/// instead of waking the loop: the loop then writes several at once, and the
/// clients' next requests come back together. Waking a sleeping thread is the
/// dearest part of a small request (an eventfd write, an epoll return, a
/// context switch on both sides), so this saves most of them. A waiting
/// response is never held long: only while the loop's `watch` timer runs
/// (it drains the mailbox every `watchInterval`), and only while more requests
/// are queued (the Python thread decides, see `PythonWorker`).
final class ResponseMailbox: @unchecked Sendable {
    /// One batch of parts for one connection.
    struct Delivery: Sendable {
        let handler: NIOLoopBound<any ResponseRecipient>
        let jobID: Int
        let parts: [ResponsePart]
        let written: (@Sendable () -> Void)?
    }

    private struct State: ~Copyable {
        var deliveries: [Delivery] = []
        /// A drain is queued on the loop and has not taken the deliveries yet.
        var drainQueued = false
        /// The loop's watch timer runs: a delivery may wait for it.
        var watching = false
    }

    let eventLoop: any EventLoop
    /// Whether requests are waiting for a Python thread (the load the watch follows).
    private let underLoad: @Sendable () -> Bool
    private let state = Mutex(State())

    // Loop-only state (touched on `eventLoop` only).
    /// The loop's spare array, swapped with the posted one (no allocation per drain).
    private var spare: [Delivery] = []
    private var watch: RepeatedTask?
    private var quietTicks = 0

    static let watchInterval = TimeAmount.microseconds(500)
    /// Quiet ticks (nothing waited, nothing queued) before the watch stops.
    static let watchQuietTicks = 8

    init(eventLoop: any EventLoop, underLoad: @escaping @Sendable () -> Bool) {
        self.eventLoop = eventLoop
        self.underLoad = underLoad
    }

    /// Whether the watch timer runs (deliveries may wait for it).
    var isWatching: Bool { state.withLock { $0.watching } }

    /// From a Python thread (or the loop). With `mayWait`, the delivery does not
    /// wake the loop when the watch timer runs.
    func post(_ delivery: Delivery, mayWait: Bool = false) {
        let mustQueue = state.withLock { state -> Bool in
            state.deliveries.append(delivery)
            if state.drainQueued || (mayWait && state.watching) { return false }
            state.drainQueued = true
            return true
        }
        if mustQueue { eventLoop.execute { self.drain() } }
    }

    /// On the loop: delivers what is posted now (before the worker exits).
    func drainNow() {
        var batch = spare
        spare = []
        state.withLock { swap(&batch, &$0.deliveries) }
        deliver(&batch)
    }

    /// On the loop: hands every posted delivery to its connection, in order.
    private func drain() {
        eventLoop.assertInEventLoop()
        var batch = spare
        spare = []
        state.withLock { state in
            swap(&batch, &state.deliveries)
            state.drainQueued = false
        }
        deliver(&batch)
        if watch == nil, underLoad() { startWatch() }
    }

    private func deliver(_ batch: inout [Delivery]) {
        for delivery in batch {
            delivery.handler.value.deliver(jobID: delivery.jobID, parts: delivery.parts, written: delivery.written)
        }
        batch.removeAll(keepingCapacity: true)
        spare = batch
    }

    private func startWatch() {
        state.withLock { $0.watching = true }
        quietTicks = 0
        watch = eventLoop.scheduleRepeatedTask(initialDelay: Self.watchInterval, delay: Self.watchInterval) { [self] task in
            tick(task)
        }
    }

    /// Every `watchInterval` while watching: delivers what waited; stops once quiet.
    private func tick(_ task: RepeatedTask) {
        var batch = spare
        spare = []
        let stopping = quietTicks + 1 >= Self.watchQuietTicks
        let anything = state.withLock { state -> Bool in
            let anything = !state.deliveries.isEmpty
            if anything || stopping {
                swap(&batch, &state.deliveries)
                if stopping && !anything { state.watching = false }
            }
            return anything
        }
        deliver(&batch)
        if anything || underLoad() {
            quietTicks = 0
        } else if stopping {
            task.cancel()
            watch = nil
        } else {
            quietTicks += 1
        }
    }
}
