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
            let created = LoopPool()
            pools[key] = created
            return created
        }
    }

    /// An idle, still open connection to `peer` on `loop`, removed from the pool.
    func take(peer: Int, on loop: any EventLoop) -> UpstreamConnection? {
        guard capacity > 0 else { return nil }
        let pool = pool(for: loop)
        while let index = pool.idle.lastIndex(where: { $0.peerIndex == peer }) {
            let connection = pool.idle.remove(at: index)
            connection.idleTimer?.cancel()
            connection.idleTimer = nil
            connection.handler.onIdleClose = nil
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
        connection.handler.onIdleClose = { [weak pool, weak connection] in
            guard let pool, let connection else { return }
            pool.idle.removeAll { $0 === connection }
        }
        pool.idle.append(connection)
        connection.idleTimer = loop.assumeIsolated().scheduleTask(in: .milliseconds(idleTimeout)) { [weak connection] in
            connection?.channel.close(promise: nil)
        }
        // Read with autoRead off so a close by the server is noticed while idle.
        connection.channel.read()
        if pool.idle.count > capacity {
            let oldest = pool.idle.removeFirst()
            oldest.idleTimer?.cancel()
            oldest.handler.onIdleClose = nil
            oldest.channel.close(promise: nil)
        }
    }
}
