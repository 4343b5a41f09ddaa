import NIOConcurrencyHelpers
import NIOCore

/// Idle keep-alive connections of one upstream group (`keepalive N`), kept per event loop
/// so a request only reuses connections of its own loop (no hops), like nginx's per-worker cache.
/// The most recently used connection is reused first; past N, the oldest is closed.
final class ConnectionPool: Sendable {
    let capacity: Int
    let idleTimeout: Int64
    let maxRequests: Int
    /// Per event loop: idle connections, oldest first. Touched only on that loop.
    private let perLoop = NIOLockedValueBox<[ObjectIdentifier: LoopPool]>([:])

    final class LoopPool: @unchecked Sendable {
        // Only used on its own event loop (the key it is stored under).
        var idle: [UpstreamConnection] = []
        let loop: (any EventLoop)?
        init(loop: any EventLoop) { self.loop = loop }
    }

    init(capacity: Int, idleTimeout: Int64, maxRequests: Int) {
        self.capacity = capacity
        self.idleTimeout = idleTimeout
        self.maxRequests = maxRequests
    }

    private func pool(for loop: any EventLoop) -> LoopPool {
        perLoop.withLockedValue { pools in
            let key = ObjectIdentifier(loop)
            if let existing = pools[key] { return existing }
            let created = LoopPool(loop: loop)
            pools[key] = created
            return created
        }
    }

    /// An idle, still open connection to `address` on `loop`, removed from the pool.
    func take(_ address: UpstreamAddress, on loop: any EventLoop) -> UpstreamConnection? {
        guard capacity > 0 else { return nil }
        let pool = pool(for: loop)
        while let index = pool.idle.lastIndex(where: { $0.address == address }) {
            let connection = pool.idle.remove(at: index)
            // In use: the idle timer, if it fires meanwhile, leaves it alone.
            connection.idleDeadline = nil
            if connection.channel.isActive { return connection }
        }
        return nil
    }

    /// Keeps a connection for reuse, or closes it when pooling is off or it served `keepalive_requests`.
    func put(_ connection: UpstreamConnection, on loop: any EventLoop) {
        guard capacity > 0, connection.requestsServed < maxRequests, connection.channel.isActive else {
            connection.channel.close(promise: nil)
            return
        }
        let pool = pool(for: loop)
        connection.handler.delegate = nil
        if connection.handler.onIdleClose == nil {
            connection.handler.onIdleClose = { [weak pool, weak connection] in
                guard let pool, let connection else { return }
                pool.idle.removeAll { $0 === connection }
            }
        }
        pool.idle.append(connection)
        // One timer per connection, moved lazily: reuse does not reschedule it.
        let deadline = NIODeadline.now() + .milliseconds(idleTimeout)
        connection.idleDeadline = deadline
        if connection.idleTimer == nil { scheduleIdleTimer(connection, at: deadline, on: loop) }
        // Read with autoRead off so a close by the server is noticed while idle.
        connection.channel.read()
        if pool.idle.count > capacity {
            let oldest = pool.idle.removeFirst()
            oldest.idleTimer?.cancel()
            oldest.handler.onIdleClose = nil
            oldest.channel.close(promise: nil)
        }
    }

    private func scheduleIdleTimer(_ connection: UpstreamConnection, at deadline: NIODeadline, on loop: any EventLoop) {
        connection.idleTimer = loop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self, weak connection] in
            guard let connection else { return }
            connection.idleTimer = nil
            guard let idleDeadline = connection.idleDeadline else { return }  // in use; `put` re-arms it
            if NIODeadline.now() < idleDeadline {
                self?.scheduleIdleTimer(connection, at: idleDeadline, on: loop)
            } else {
                connection.channel.close(promise: nil)
            }
        }
    }

    /// Closes idle connections to servers no longer in the group (after `replaceServers`).
    func closeIdle(except keep: Set<UpstreamAddress>) {
        let pools = perLoop.withLockedValue { Array($0) }
        for (_, pool) in pools {
            // Each loop's pool is touched only on its loop: hop there.
            guard let loop = pool.loop else { continue }
            loop.execute {
                let leaving = pool.idle.filter { !keep.contains($0.address) }
                pool.idle.removeAll { !keep.contains($0.address) }
                for connection in leaving {
                    connection.idleTimer?.cancel()
                    connection.handler.onIdleClose = nil
                    connection.channel.close(promise: nil)
                }
            }
        }
    }
}
