import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Idle keep-alive connections of one upstream group (`keepalive N`), kept per event loop
/// so a request only reuses connections of its own loop (no hops), like nginx's per-worker cache.
/// The most recently used connection is reused first; past N, the oldest is closed.
final class ConnectionPool: Sendable {
    let capacity: Int
    let idleTimeout: Int64
    let maxRequests: Int
    /// Per event loop: idle connections, oldest first. Touched only on that loop.
    private let perLoop = SpinningLockedValue<[ObjectIdentifier: LoopPool]>([:])

    final class LoopPool: @unchecked Sendable {
        // Only used on its own event loop (the key it is stored under).
        var idle: [UpstreamConnection] = []
        let loop: (any EventLoop)?
        /// Bootstraps for new connections on this loop, by kind and connect timeout (see `bootstrap`).
        var bootstraps: [BootstrapKey: ClientBootstrap] = [:]
        init(loop: any EventLoop) { self.loop = loop }
    }

    struct BootstrapKey: Hashable {
        /// Unix sockets connected already (`withConnectedSocket`): no TCP options to apply.
        var connected: Bool
        var connectTimeout: Int64
    }

    /// A `ClientBootstrap` for a new connection on `loop`, made once per loop, kind and timeout
    /// rather than per connection (making and configuring one costs more than a thousand instructions).
    /// The handler's head limit is set per request (`UpstreamHandler.expectResponse`).
    func bootstrap(on loop: any EventLoop, connected: Bool, connectTimeout: Int64) -> ClientBootstrap {
        let pool = pool(for: loop)
        let key = BootstrapKey(connected: connected, connectTimeout: connectTimeout)
        if let bootstrap = pool.bootstraps[key] { return bootstrap }
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(connectTimeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Set here, synchronously, rather than as a bootstrap option: each bootstrap
                    // option is applied through its own chain of futures, per connection.
                    // The initializer runs before the channel is registered, so no read starts early.
                    try channel.syncOptions?.setOption(.autoRead, value: false)
                    // One handler does the whole upstream protocol (no codec pipeline).
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
                }
            }
        if connected {
            // `enableMPTCP` only drops the bootstrap's default TCP_NODELAY option here (meaningless
            // on a Unix socket, yet applied through a chain of futures per connection); it cannot
            // change the protocol of a socket that already exists.
            bootstrap = bootstrap.enableMPTCP(true)
        }
        pool.bootstraps[key] = bootstrap
        return bootstrap
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
        // A connection stays on its loop: its pool is looked up (under the lock) once, then remembered.
        let pool = connection.loopPool ?? pool(for: loop)
        connection.loopPool = pool
        connection.handler.delegate = nil
        if connection.handler.onIdleClose == nil {
            // The connection is captured strongly (no side table on it; the handler lets go when its
            // channel closes). The pool weakly: a reload may drop this pool while a connection
            // it held is still closing.
            connection.handler.onIdleClose = { [weak pool, connection] in
                pool?.idle.removeAll { $0 === connection }
            }
            // The idle timer holds the connection: once closed (by anyone), let it go at once.
            connection.channel.closeFuture.assumeIsolated().whenComplete { [connection] _ in
                connection.idleTimer?.cancel()
                connection.idleTimer = nil
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
        // The timer holds the connection until it fires (at most `keepalive_timeout`): a `weak`
        // capture would make every retain and release of the connection slow.
        connection.idleTimer = loop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self, connection] in
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
