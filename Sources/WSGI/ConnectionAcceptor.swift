#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Accepts a worker's connections on a small thread of its own and hands each
/// to the event loop (`withConnectedSocket`), for two reasons:
///
/// - The socket may be shared with other worker processes (a supervisor's
///   `--listen-fd`). Several processes polling one socket race for each
///   connection; the losers see `EAGAIN`, which NIO's server channel treats as
///   impossible.
/// - The worker must know each connection's descriptor: a request running on
///   the event loop (`PythonWorker.runInline`) that passes `--timeout` blocks
///   the loop, and its 504 is written straight to the socket (see `WSGIServer`).
///
/// Fair share, on a shared socket: whichever process wakes first would take a
/// whole burst of new connections (wrk's 32 all went to one of two workers in 3
/// runs out of 5, leaving the other idle for the life of those connections). So
/// a worker that already holds connections waits a little before each accept,
/// longer the more it holds (`acceptDelay`): a worker with fewer wins the race,
/// and the counts even out, as gunicorn's one-connection-at-a-time workers do by nature.
final class ConnectionAcceptor: @unchecked Sendable {
    let descriptor: Int32
    /// Shared with other processes (inherited): balance accepts, never shut it down.
    let shared: Bool
    let makeBootstrap: @Sendable (_ connection: Int32) -> ClientBootstrap
    let log: ErrorLog
    let openConnections: @Sendable () -> Int
    private let stopped = Atomic<Bool>(false)

    init(descriptor: Int32, shared: Bool, log: ErrorLog, openConnections: @escaping @Sendable () -> Int,
         makeBootstrap: @escaping @Sendable (_ connection: Int32) -> ClientBootstrap) {
        self.descriptor = descriptor
        self.shared = shared
        self.makeBootstrap = makeBootstrap
        self.log = log
        self.openConnections = openConnections
    }

    /// 20 µs per connection held, at most 16 of them (0.32 ms): a worker still
    /// accepts thousands of connections a second when it is alone.
    static func acceptDelay(openConnections: Int) -> UInt32 {
        UInt32(min(max(openConnections, 0), 16) * 20)
    }

    func start() {
        // Losing a race for a connection must not block this thread.
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "accept-\(descriptor)"
        thread.start()
    }

    /// Stops accepting. A socket of this worker's own is shut down, so that new
    /// connections are refused at once (a proxy in front then tries another
    /// worker) instead of waiting in the backlog for a worker that is leaving.
    func stop() {
        stopped.store(true, ordering: .relaxed)
        if !shared { _ = shutdown(descriptor, Int32(SHUT_RDWR)) }
    }

    private var isStopped: Bool { stopped.load(ordering: .relaxed) }

    private func acceptLoop() {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while !isStopped {
            poller.revents = 0
            guard poll(&poller, 1, 200) > 0, !isStopped else { continue }
            if shared {
                let delay = Self.acceptDelay(openConnections: openConnections())
                if delay > 0 { usleep(delay) }
            }
            let client = accept(descriptor, nil, nil)
            if client < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    log.error("accept failed: \(String(cString: strerror(errno))); retrying")
                    usleep(50_000)
                default:
                    if isStopped { return }
                    log.error("accept on fd \(descriptor) failed: \(String(cString: strerror(errno)))")
                    usleep(50_000)
                }
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            makeBootstrap(client).withConnectedSocket(client).whenFailure { [log] error in
                log.debug("could not register an accepted connection: \(error)")
            }
        }
    }
}
