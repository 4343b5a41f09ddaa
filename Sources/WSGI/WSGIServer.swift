import CPython
import Dispatch
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What connections and Python threads share: settings, logs, the request
/// queue, the running jobs (for `--timeout`) and the shutdown state.
final class WSGIServerCore: @unchecked Sendable {
    let settings: WorkerSettings
    let log: ErrorLog
    let queue = RequestQueue()
    private let monitor = Monitor()
    private var lastJobID = 0
    private var running: [Int: WSGIJob] = [:]
    private var completed = 0
    private var draining = false
    private var recycleRequested = false
    /// Called once when `--max-requests` is reached.
    var onMaxRequests: (@Sendable () -> Void)?

    init(settings: WorkerSettings, log: ErrorLog) {
        self.settings = settings
        self.log = log
    }

    func nextJobID() -> Int { monitor.withLock { lastJobID += 1; return lastJobID } }

    func submit(_ job: WSGIJob) {
        monitor.withLock { running[job.id] = job }
        queue.push(job)
    }

    func jobDone(_ job: WSGIJob) {
        let reachedMax = monitor.withLock { () -> Bool in
            running[job.id] = nil
            completed += 1
            if settings.maxRequests > 0, completed >= settings.maxRequests, !recycleRequested {
                recycleRequested = true
                return true
            }
            return false
        }
        if reachedMax { onMaxRequests?() }
    }

    var isDraining: Bool { monitor.withLock { draining } }
    func startDraining() { monitor.withLock { draining = true } }
    var runningCount: Int { monitor.withLock { running.count } }

    /// Jobs running longer than `seconds`.
    func overdueJobs(after seconds: Double) -> [WSGIJob] {
        let limit = NIODeadline.now() - .nanoseconds(Int64(seconds * 1e9))
        return monitor.withLock { running.values.filter { $0.started < limit } }
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

        for index in 0..<max(1, settings.threads) {
            let worker = PythonWorker(context: context, queue: core.queue, log: log, onJobDone: { [core] job in core.jobDone(job) })
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
            let channel = try makeBootstrap(for: bind, tcp: isTCP).withBoundSocket(descriptor).wait()
            serverChannels.append(channel)
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
                    let decoder = HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(decoder))
                    try channel.pipeline.syncOperations.addHandler(WSGIConnectionHandler(server: core, bind: bind))
                }
            }
        if tcp {
            bootstrap = bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
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
        for case .unix(let path) in settings.binds { unlink(path) }
        let deadline = NIODeadline.now() + .nanoseconds(Int64(settings.gracefulTimeout * 1e9))
        let loop = group.next()
        loop.scheduleRepeatedTask(initialDelay: .milliseconds(20), delay: .milliseconds(50)) { [self] task in
            if core.runningCount == 0 {
                task.cancel()
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

/// Counts down from a number across threads; `tick` is true for the last one.
final class Countdown: @unchecked Sendable {
    private let monitor = Monitor()
    private var remaining: Int
    init(_ count: Int) { remaining = count }
    func tick() -> Bool { monitor.withLock { remaining -= 1; return remaining == 0 } }
}
