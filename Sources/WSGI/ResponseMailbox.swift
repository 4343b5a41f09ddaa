import NIOCore
import Synchronization

/// Response parts on their way from the Python threads to the worker's event
/// loop. Responses that finish while the loop has not yet run the last hand-over
/// ride on it: one `execute` (and at most one wake-up of the loop) for all of
/// them, instead of one task per response.
final class ResponseMailbox: Sendable {
    /// One batch of parts for one connection.
    struct Delivery: Sendable {
        let handler: NIOLoopBound<WSGIConnectionHandler>
        let jobID: Int
        let parts: [ResponsePart]
        let written: (@Sendable () -> Void)?
    }

    private struct State: ~Copyable {
        var deliveries: [Delivery] = []
        /// A drain is queued on the loop and has not taken the deliveries yet.
        var drainQueued = false
    }

    let eventLoop: any EventLoop
    private let state = Mutex(State())
    /// The loop's spare array, swapped with the posted one (no allocation per drain).
    private let spare: NIOLoopBoundBox<[Delivery]>

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.spare = NIOLoopBoundBox.makeBoxSendingValue([], eventLoop: eventLoop)
    }

    /// From a Python thread (or the loop).
    func post(_ delivery: Delivery) {
        let mustQueue = state.withLock { state -> Bool in
            state.deliveries.append(delivery)
            if state.drainQueued { return false }
            state.drainQueued = true
            return true
        }
        if mustQueue { eventLoop.execute { self.drain() } }
    }

    /// On the loop: hands every posted delivery to its connection, in order.
    private func drain() {
        var batch = spare.value
        spare.value = []
        state.withLock { state in
            swap(&batch, &state.deliveries)
            state.drainQueued = false
        }
        for delivery in batch {
            delivery.handler.value.deliver(jobID: delivery.jobID, parts: delivery.parts, written: delivery.written)
        }
        batch.removeAll(keepingCapacity: true)
        spare.value = batch
    }
}
