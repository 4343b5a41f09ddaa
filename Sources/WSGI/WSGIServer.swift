import CPython
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import Supervisor
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
    let queue: RequestQueue
    /// With `--threads 1`: the one Python thread's worker, whose requests without
    /// a body run on the event loop (`runInlineIfIdle`). Set before serving.
    var inlineWorker: PythonWorker?
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
        self.queue = RequestQueue(exclusive: settings.threads <= 1 && !settings.sameThread && Self.inlineSwitch)
    }

    /// `GANTRY_WSGI_INLINE=0` keeps every request on the Python thread, as `--same-thread` does
    /// (for measuring; it predates the flag).
    static let inlineSwitch = getenv("GANTRY_WSGI_INLINE").map { String(cString: $0) != "0" } ?? true

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

    /// On the loop: runs `job` (no body) right here when the app is idle (see
    /// `PythonWorker.runInline`). False: submit it to the queue instead.
    func runInlineIfIdle(_ job: WSGIJob) -> Bool {
        guard let worker = inlineWorker, worker.inlineAllowed.load(ordering: .relaxed), queue.tryClaim() else { return false }
        outstanding.wrappingAdd(1, ordering: .relaxed)
        if worker.runInline(job) {
            queue.release()
            jobDone(job)
        }  // else the Python thread finishes it, then releases the app and counts it done
        return true
    }

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
    var completedCount: Int { completed.load(ordering: .relaxed) }

    /// Whether the app is running a request on the event loop (which it then holds).
    var isRunningOnLoop: Bool { runningSlots.contains { $0.job?.isOnLoop ?? false } }

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
    private var acceptors: [ConnectionAcceptor] = []
    /// Where the timers run: not on the event loop, which a request running
    /// there (`PythonWorker.runInline`) may block past `--timeout`.
    private let timerQueue = DispatchQueue(label: "gantry.worker-timers")
    private var timers: [any DispatchSourceTimer] = []
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
            if core.queue.exclusive { core.inlineWorker = worker }
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
                timerQueue.async { self.shutdownGracefully() }
            }
        }
        startTimers()
        watchSupervisor()
        sendControl(.ready)
        while true { pause() }
    }

    // MARK: Listening

    /// `--bind` sockets are bound here and `--listen-fd` ones inherited; both are
    /// served by a `ConnectionAcceptor` (each connection's descriptor is known).
    private func bindAll() throws {
        for bind in settings.binds {
            let socket: ListeningSocket
            do {
                switch bind {
                case .tcp(let host, let port): socket = try ListeningSocket.bind(.tcp(host: host, port: port))
                case .unix(let path): socket = try ListeningSocket.bind(.unix(path: path))
                }
            } catch {
                throw WorkerConfigurationError.invalidValue(flag: "--bind", value: bind.description, reason: "\(error)")
            }
            let bound = try Self.boundAddress(of: socket.fd)
            startAcceptor(socket.fd, bind: bound, shared: false)
            log.info("Listening at: \(Self.describe(bind, actual: bound)) (\(getpid()))")
        }
        for descriptor in settings.listenDescriptors {
            let bind = try Self.boundAddress(of: descriptor)
            startAcceptor(descriptor, bind: bind, shared: true)
            log.info("Listening at: \(bind) (fd \(descriptor)) (\(getpid()))")
        }
    }

    private func startAcceptor(_ descriptor: Int32, bind: WorkerBind, shared: Bool) {
        let core = self.core
        let group = self.group
        let isTCP: Bool
        if case .unix = bind { isTCP = false } else { isTCP = true }
        let acceptor = ConnectionAcceptor(descriptor: descriptor, shared: shared, log: log,
                                          openConnections: { [core] in core.openConnections }) { connection in
            let bootstrap = ClientBootstrap(group: group)
                .channelOption(.maxMessagesPerRead, value: 8)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            WSGIConnectionHandler(server: core, bind: bind, descriptor: connection))
                    }
                }
            return isTCP ? bootstrap.channelOption(.socketOption(.tcp_nodelay), value: 1) : bootstrap
        }
        acceptor.start()
        acceptors.append(acceptor)
    }

    /// The bind as given, with the port the kernel chose for port 0.
    static func describe(_ bind: WorkerBind, actual: WorkerBind) -> String {
        if case .tcp(let host, _) = bind, case .tcp(_, let port) = actual { return WorkerBind.tcp(host: host, port: port).description }
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

    /// Calls `body` every `seconds` on `timerQueue` until it returns false.
    private func repeatEvery(_ seconds: Double, _ body: @escaping @Sendable () -> Bool) {
        let timer = DispatchSource.makeTimerSource(queue: timerQueue)
        let interval = DispatchTimeInterval.nanoseconds(Int(seconds * 1e9))
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.setEventHandler {
            if !body() {
                timer.cancel()
                timer.setEventHandler {}  // drop this closure, which holds the timer
            }
        }
        monitor.withLock { timers.append(timer) }
        timer.resume()
    }

    private func startTimers() {
        if settings.controlDescriptor != nil {
            // The heartbeat says the event loop is alive: it ran a task lately, or it is running
            // an app request, which `--timeout` polices. A loop frozen otherwise goes silent, and
            // the supervisor replaces the worker.
            let loop = group.next()
            let lastTick = Atomic<UInt64>(DispatchTime.now().uptimeNanoseconds)
            let silence = UInt64(max(settings.timeout, settings.heartbeatInterval * 2) * 1e9)
            repeatEvery(settings.heartbeatInterval) { [self] in
                loop.execute { lastTick.store(DispatchTime.now().uptimeNanoseconds, ordering: .relaxed) }
                let quietFor = DispatchTime.now().uptimeNanoseconds &- lastTick.load(ordering: .relaxed)
                if quietFor < silence || core.isRunningOnLoop { sendControl(.heartbeat) }
                return true
            }
        }
        guard settings.timeout > 0 else { return }
        repeatEvery(max(0.1, min(1, settings.timeout / 10))) { [self] in
            checkTimeouts()
            return true
        }
    }

    /// On `timerQueue`: answers 504 to every request past `--timeout`, then exits
    /// (the thread running the app cannot be stopped; a new worker replaces this one).
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
            if job.isOnLoop {
                // The app holds the event loop: write the answer to the socket from here.
                if job.claimForServer() {
                    let response = SimpleResponse.make("504 Gateway Timeout", httpMinorVersion: job.httpMinorVersion)
                    _ = response.withUnsafeReadableBytes { Glibc.send(job.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    _ = shutdown(job.descriptor, Int32(SHUT_WR))
                }
                if remaining.tick() { exit(.requestTimeout) }
            } else {
                job.sink.answerForServer(job, status: "504 Gateway Timeout") {
                    if remaining.tick() { exit(.requestTimeout) }
                }
            }
        }
        // The app is stuck: do not wait long for the 504 to go out.
        timerQueue.asyncAfter(deadline: .now() + 2) { exit(.requestTimeout) }
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
            repeatEvery(0.5) { [self] in
                if getppid() != parent {
                    log.warning("the parent process \(parent) is gone: exiting (pid \(getpid()))")
                    exit(.normal)
                }
                return true
            }
        }
    }

    func sendControl(_ message: WorkerControlMessage) {
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
                    timerQueue.async { self.shutdownGracefully() }
                } else {
                    log.info("Worker exiting (pid: \(getpid()))")
                    exit(.normal)
                }
            }
            source.resume()
            signalSources.append(source)
        }
    }

    /// On `timerQueue` (the loop may be held by a request): stops accepting, lets
    /// running requests finish within `--graceful-timeout`, exits 0.
    func shutdownGracefully() {
        dispatchPrecondition(condition: .onQueue(timerQueue))
        guard !core.isDraining else { return }
        core.startDraining()
        for acceptor in acceptors { acceptor.stop() }
        for case .unix(let path) in settings.binds { unlink(path) }
        let deadline = NIODeadline.now() + .nanoseconds(Int64(settings.gracefulTimeout * 1e9))
        let loop = group.next()
        let quiet = QuietWatch()
        repeatEvery(0.05) { [self] in
            // Done when nothing runs and either no connection is left (each got `Connection:
            // close` with its last answer) or none has brought a request for a while: a kept-alive
            // client may have a request on its way, which exiting at once would cut.
            let isQuiet = quiet.observe(completed: core.completedCount)
            if core.runningCount == 0, core.openConnections == 0 || isQuiet {
                loop.execute { [self] in
                    // Re-checked on the loop: a request may have started since.
                    guard core.runningCount == 0 else { return }
                    core.drainMailboxes()
                    runtime.withGIL { _ = runtime.call("run_atexit", []) }
                    exit(.normal)
                }
            }
            if NIODeadline.now() > deadline {
                log.warning("graceful timeout (\(settings.gracefulTimeout)s) reached with \(core.runningCount) request(s) running: exiting")
                exit(.normal)
            }
            return true
        }
    }
}

/// Whether a draining worker has finished no request for `quietChecks` checks in a row.
final class QuietWatch: @unchecked Sendable {
    static let quietChecks = 4
    private var lastCompleted = -1
    private var unchanged = 0

    /// On the timer queue, once per check.
    func observe(completed: Int) -> Bool {
        if completed == lastCompleted { unchanged += 1 } else { unchanged = 0 }
        lastCompleted = completed
        return unchanged >= Self.quietChecks
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
