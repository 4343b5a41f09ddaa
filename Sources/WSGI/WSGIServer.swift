import CPython
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What connections and Python threads share: settings, logs, the request
/// queue, the running jobs (for `--timeout`) and the shutdown state. Nothing
/// here takes a lock per request: counters are atomics, and each Python thread
/// has its own slot for the job it runs.
final class WSGIServerCore: @unchecked Sendable {
    let settings: WorkerSettings
    let log: ErrorLog
    let queue = RequestQueue()
    private let monitor = Monitor()
    private let lastJobID = Atomic<Int>(0)
    /// Jobs submitted and not done (queued or running).
    private let outstanding = Atomic<Int>(0)
    private let completed = Atomic<Int>(0)
    private let draining = Atomic<Bool>(false)
    /// The job each Python thread is running, one slot per thread.
    let runningSlots: [RunningSlot]
    /// Called once when `--max-requests` is reached.
    var onMaxRequests: (@Sendable () -> Void)?

    init(settings: WorkerSettings, log: ErrorLog) {
        self.settings = settings
        self.log = log
        self.runningSlots = (0..<max(1, settings.threads)).map { _ in RunningSlot() }
    }

    func nextJobID() -> Int { lastJobID.wrappingAdd(1, ordering: .relaxed).newValue }

    /// The worker's one event loop and its mailbox (made on first use).
    private var mailboxes: [ObjectIdentifier: ResponseMailbox] = [:]
    func mailbox(for eventLoop: any EventLoop) -> ResponseMailbox {
        monitor.withLock {
            if let made = mailboxes[ObjectIdentifier(eventLoop)] { return made }
            let made = ResponseMailbox(eventLoop: eventLoop, underLoad: { [queue] in queue.hasWaiting })
            mailboxes[ObjectIdentifier(eventLoop)] = made
            return made
        }
    }

    /// On the loop: writes every response still in a mailbox (before exiting).
    func drainMailboxes() {
        for mailbox in monitor.withLock({ Array(mailboxes.values) }) { mailbox.drainNow() }
    }

    /// Connections this worker holds (for `InheritedListener`'s fair share).
    private let connections = Atomic<Int>(0)
    var openConnections: Int { connections.load(ordering: .relaxed) }
    func connectionOpened() { connections.wrappingAdd(1, ordering: .relaxed) }
    func connectionClosed() { connections.wrappingSubtract(1, ordering: .relaxed) }

    func submit(_ job: WSGIJob) {
        outstanding.wrappingAdd(1, ordering: .relaxed)
        queue.push(job)
    }

    func jobDone(_ job: WSGIJob) {
        outstanding.wrappingSubtract(1, ordering: .releasing)
        let count = completed.wrappingAdd(1, ordering: .relaxed).newValue
        if settings.maxRequests > 0, count == settings.maxRequests { onMaxRequests?() }
    }

    var isDraining: Bool { draining.load(ordering: .relaxed) }
    func startDraining() { draining.store(true, ordering: .relaxed) }
    var runningCount: Int { outstanding.load(ordering: .acquiring) }

    /// Jobs running longer than `seconds`.
    func overdueJobs(after seconds: Double) -> [WSGIJob] {
        let limit = NIODeadline.now() - .nanoseconds(Int64(seconds * 1e9))
        return runningSlots.compactMap { slot in
            guard let job = slot.job, let started = job.started, started < limit else { return nil }
            return job
        }
    }

    func logAccess(_ job: WSGIJob, status: Int, bodyBytes: Int) {
        guard let sink = settings.accessLog else { return }
        let environ = job.environ
        let line = AccessLogLine(
            remoteAddr: environ.remoteAddr,
            requestLine: "\(environ.requestMethod) \(environ.rawURI) \(environ.serverProtocol)",
            status: status, bodyBytes: bodyBytes,
            referer: environ.headers.first { $0.key == "HTTP_REFERER" }?.value,
            userAgent: environ.headers.first { $0.key == "HTTP_USER_AGENT" }?.value)
        sink.write(line.formatted(time: HTTPDate.shared.logTime()))
    }
}

/// A worker process's server: binds, Python threads, timers, signals and the
/// control pipe. `run` never returns; the process exits through `exit`.
public final class WSGIServer: @unchecked Sendable {
    let core: WSGIServerCore
    let runtime: PythonRuntime
    let app: PyObjectPointer
    let exit: @Sendable (WorkerStopReason) -> Never
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var serverChannels: [any Channel] = []
    private var inheritedListeners: [InheritedListener] = []
    private var signalSources: [any DispatchSourceSignal] = []
    private let monitor = Monitor()
    private var exiting = false

    /// `app` is a new reference to the WSGI callable; the calling thread holds the GIL.
    public init(settings: WorkerSettings, log: ErrorLog, runtime: PythonRuntime, app: PyObjectPointer,
                exit: @escaping @Sendable (WorkerStopReason) -> Never) {
        self.core = WSGIServerCore(settings: settings, log: log)
        self.runtime = runtime
        self.app = app
        self.exit = exit
    }

    var settings: WorkerSettings { core.settings }
    var log: ErrorLog { core.log }

    public func run() -> Never {
        signal(SIGPIPE, SIG_IGN)
        PythonFunction.api = runtime.api
        let context: WSGIPythonContext
        do {
            context = try WSGIPythonContext(runtime: runtime, app: app, errorLog: log,
                                            multithread: settings.threads > 1, multiprocess: settings.multiprocess)
        } catch {
            exit(.failure("\(error)"))
        }
        runtime.releaseMainThread()

        for (index, slot) in core.runningSlots.enumerated() {
            let worker = PythonWorker(context: context, queue: core.queue, slot: slot, log: log, onJobDone: { [core] job in core.jobDone(job) })
            worker.start(name: "python-\(index)")
        }

        do {
            try bindAll()
        } catch {
            exit(.bindFailure("\(error)"))
        }
        installSignalHandlers()
        core.onMaxRequests = { [self] in
            if settings.controlDescriptor != nil {
                log.info("max requests (\(settings.maxRequests)) reached: asking for a replacement")
                sendControl(.recycle)
            } else {
                log.info("max requests (\(settings.maxRequests)) reached: shutting down")
                group.next().execute { self.shutdownGracefully() }
            }
        }
        startTimers()
        watchSupervisor()
        sendControl(.ready)
        while true { pause() }
    }

    // MARK: Listening

    private func bindAll() throws {
        for bind in settings.binds {
            let channel: any Channel
            switch bind {
            case .tcp(let host, let port):
                channel = try makeBootstrap(for: bind, tcp: true).bind(host: host, port: port).wait()
            case .unix(let path):
                channel = try makeBootstrap(for: bind, tcp: false).bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
            }
            serverChannels.append(channel)
            log.info("Listening at: \(Self.describe(bind, actual: channel.localAddress)) (\(getpid()))")
        }
        for descriptor in settings.listenDescriptors {
            let bind = try Self.boundAddress(of: descriptor)
            var isTCP = true
            if case .unix = bind { isTCP = false }
            let listener = InheritedListener(descriptor: descriptor, bootstrap: makeConnectionBootstrap(for: bind, tcp: isTCP), log: log,
                                             openConnections: { [core] in core.openConnections })
            listener.start()
            inheritedListeners.append(listener)
            log.info("Listening at: \(bind) (fd \(descriptor)) (\(getpid()))")
        }
    }

    private func makeBootstrap(for bind: WorkerBind, tcp: Bool) -> ServerBootstrap {
        let core = self.core
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 2048)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 8)
            .childChannelOption(.autoRead, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WSGIConnectionHandler(server: core, bind: bind))
                }
            }
        if tcp {
            bootstrap = bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        }
        return bootstrap
    }

    /// For connections accepted from an inherited socket (see `InheritedListener`).
    private func makeConnectionBootstrap(for bind: WorkerBind, tcp: Bool) -> ClientBootstrap {
        let core = self.core
        var bootstrap = ClientBootstrap(group: group)
            .channelOption(.maxMessagesPerRead, value: 8)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(WSGIConnectionHandler(server: core, bind: bind))
                }
            }
        if tcp {
            bootstrap = bootstrap.channelOption(.socketOption(.tcp_nodelay), value: 1)
        }
        return bootstrap
    }

    static func describe(_ bind: WorkerBind, actual: SocketAddress?) -> String {
        if case .tcp(let host, _) = bind, let port = actual?.port { return WorkerBind.tcp(host: host, port: port).description }
        return bind.description
    }

    /// What an inherited listening socket is bound to (for `SERVER_NAME`/`SERVER_PORT`).
    static func boundAddress(of descriptor: Int32) throws -> WorkerBind {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { throw WorkerConfigurationError.invalidValue(flag: "--listen-fd", value: "\(descriptor)", reason: String(cString: strerror(errno))) }
        switch Int32(storage.ss_family) {
        case AF_UNIX:
            let path = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { pointer in
                    withUnsafePointer(to: pointer.pointee.sun_path) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
                }
            }
            return .unix(path: path)
        case AF_INET:
            let v4 = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee } }
            return .tcp(host: SocketAddress(v4, host: "").ipAddress ?? "0.0.0.0", port: Int(UInt16(bigEndian: v4.sin_port)))
        case AF_INET6:
            let v6 = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee } }
            return .tcp(host: SocketAddress(v6, host: "").ipAddress ?? "::", port: Int(UInt16(bigEndian: v6.sin6_port)))
        default:
            throw WorkerConfigurationError.invalidValue(flag: "--listen-fd", value: "\(descriptor)", reason: "not an IP or Unix socket")
        }
    }

    // MARK: Timers: request timeout and heartbeat

    private func startTimers() {
        let loop = group.next()
        let interval = settings.heartbeatInterval
        loop.scheduleRepeatedTask(initialDelay: .nanoseconds(Int64(interval * 1e9)), delay: .nanoseconds(Int64(interval * 1e9))) { [self] _ in
            if settings.controlDescriptor != nil { sendControl(.heartbeat) }
        }
        guard settings.timeout > 0 else { return }
        let check = max(0.1, min(1, settings.timeout / 10))
        loop.scheduleRepeatedTask(initialDelay: .nanoseconds(Int64(check * 1e9)), delay: .nanoseconds(Int64(check * 1e9))) { [self] _ in
            checkTimeouts()
        }
    }

    private func checkTimeouts() {
        let overdue = core.overdueJobs(after: settings.timeout)
        guard let job = overdue.first else { return }
        let begin = monitor.withLock { () -> Bool in
            if exiting { return false }
            exiting = true
            return true
        }
        guard begin else { return }
        log.log(.critical, "WORKER TIMEOUT: \(job.environ.requestMethod) \(job.environ.rawURI) ran past --timeout \(settings.timeout)s; answering 504 and exiting (pid \(getpid()))")
        let exit = self.exit
        let remaining = Countdown(overdue.count)
        for job in overdue {
            job.sink.answerForServer(job, status: "504 Gateway Timeout") {
                if remaining.tick() { exit(.requestTimeout) }
            }
        }
        // The Python thread is stuck: do not wait long for the 504 to go out.
        group.next().scheduleTask(in: .seconds(2)) { exit(.requestTimeout) }
    }

    // MARK: Control pipe and signals

    /// Exits when whoever started this worker is gone: its end of the control
    /// channel closes (a supervisor never writes to it), or the parent process
    /// named by `--parent-pid` changes.
    private func watchSupervisor() {
        if let descriptor = settings.controlDescriptor {
            let thread = Thread { [self] in
                var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                var buffer = [UInt8](repeating: 0, count: 256)
                while true {
                    poller.revents = 0
                    guard poll(&poller, 1, -1) > 0 else { continue }
                    let count = read(descriptor, &buffer, buffer.count)
                    if count == 0 || (count < 0 && errno != EINTR && errno != EAGAIN) {
                        log.warning("the supervisor's control channel closed: exiting (pid \(getpid()))")
                        exit(.normal)
                    }
                }
            }
            thread.name = "control"
            thread.start()
        }
        if let parent = settings.parentPID {
            group.next().scheduleRepeatedTask(initialDelay: .milliseconds(500), delay: .milliseconds(500)) { [self] _ in
                if getppid() != parent {
                    log.warning("the parent process \(parent) is gone: exiting (pid \(getpid()))")
                    exit(.normal)
                }
            }
        }
    }

    func sendControl(_ message: ControlMessage) {
        guard let descriptor = settings.controlDescriptor else { return }
        let line = message.rawValue + "\n"
        let written = line.withCString { Glibc.write(descriptor, $0, strlen($0)) }
        if written < 0 && errno == EPIPE {
            log.warning("the supervisor's control pipe is closed: exiting")
            exit(.normal)
        }
    }

    private func installSignalHandlers() {
        let queue = DispatchQueue(label: "gantry.signals")
        for (number, graceful) in [(SIGTERM, false), (SIGINT, false), (SIGQUIT, true)] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [self] in
                if graceful {
                    log.info("Worker graceful shutdown (pid: \(getpid()))")
                    group.next().execute { self.shutdownGracefully() }
                } else {
                    log.info("Worker exiting (pid: \(getpid()))")
                    exit(.normal)
                }
            }
            source.resume()
            signalSources.append(source)
        }
    }

    /// Stops accepting, lets running requests finish within `--graceful-timeout`, exits 0.
    func shutdownGracefully() {
        guard !core.isDraining else { return }
        core.startDraining()
        for channel in serverChannels { channel.close(promise: nil) }
        for listener in inheritedListeners { listener.stop() }
        for case .unix(let path) in settings.binds { unlink(path) }
        let deadline = NIODeadline.now() + .nanoseconds(Int64(settings.gracefulTimeout * 1e9))
        let loop = group.next()
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(20), delay: .milliseconds(50)) { [self] task in
            if core.runningCount == 0 {
                task.cancel()
                core.drainMailboxes()
                runtime.withGIL { _ = runtime.call("run_atexit", []) }
                exit(.normal)
            }
            if NIODeadline.now() > deadline {
                log.warning("graceful timeout (\(settings.gracefulTimeout)s) reached with \(core.runningCount) request(s) running: exiting")
                exit(.normal)
            }
        }
    }

    /// `WorkerControlMessage` of the Supervisor module, restated (WSGI does not depend on it).
    public enum ControlMessage: String, Sendable {
        case ready, heartbeat, recycle
    }
}

/// The job one Python thread is running, for the `--timeout` check.
final class RunningSlot: Sendable {
    private let current = Mutex<WSGIJob?>(nil)
    var job: WSGIJob? { current.withLock { $0 } }
    func set(_ job: WSGIJob?) { current.withLock { $0 = job } }
}

/// Counts down from a number across threads; `tick` is true for the last one.
final class Countdown: @unchecked Sendable {
    private let monitor = Monitor()
    private var remaining: Int
    init(_ count: Int) { remaining = count }
    func tick() -> Bool { monitor.withLock { remaining -= 1; return remaining == 0 } }
}

/// Accepts on a listening socket shared with other worker processes (from a
/// supervisor's `--listen-fd`). Several processes polling one socket race for
/// each connection; the losers see `EAGAIN`, which NIO's server channel treats
/// as impossible, so a small thread accepts instead and hands each connection
/// to the event loop (`withConnectedSocket`).
///
/// Fair share: whichever process wakes first would take a whole burst of new
/// connections (wrk's 32 all went to one of two workers in 3 runs out of 5,
/// leaving the other idle for the life of those connections). So a worker that
/// already holds connections waits a little before each accept, longer the more
/// it holds (`acceptDelay`): a worker with fewer wins the race, and the counts
/// even out, as gunicorn's one-connection-at-a-time workers do by nature.
final class InheritedListener: @unchecked Sendable {
    let descriptor: Int32
    let bootstrap: ClientBootstrap
    let log: ErrorLog
    let openConnections: @Sendable () -> Int
    private let monitor = Monitor()
    private var stopped = false

    init(descriptor: Int32, bootstrap: ClientBootstrap, log: ErrorLog, openConnections: @escaping @Sendable () -> Int) {
        self.descriptor = descriptor
        self.bootstrap = bootstrap
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

    func stop() { monitor.withLock { stopped = true } }

    private var isStopped: Bool { monitor.withLock { stopped } }

    private func acceptLoop() {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while !isStopped {
            poller.revents = 0
            guard poll(&poller, 1, 200) > 0, !isStopped else { continue }
            let delay = Self.acceptDelay(openConnections: openConnections())
            if delay > 0 { usleep(delay) }
            let client = accept(descriptor, nil, nil)
            if client < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    log.error("accept failed: \(String(cString: strerror(errno))); retrying")
                    usleep(50_000)
                default:
                    log.error("accept on fd \(descriptor) failed: \(String(cString: strerror(errno)))")
                    usleep(50_000)
                }
                continue
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            bootstrap.withConnectedSocket(client).whenFailure { [log] error in
                log.debug("could not register an accepted connection: \(error)")
            }
        }
    }
}
