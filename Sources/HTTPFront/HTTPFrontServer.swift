import Foundation
import Synchronization
import Logging
import NIOCore
import NIOPosix
import NginxConfig

/// The running front: one listening socket per distinct `listen`, one event
/// loop per worker (`worker_processes`), a small thread pool for file-system
/// probes, and the access log writers.
///
/// ```swift
/// let server = try HTTPFrontServer(configuration: config, modules: [proxy], logger: logger)
/// try server.start()          // binds every listen; throws when one cannot be bound
/// server.shutdownGracefully() // stop accepting, finish in-flight responses, close
/// ```
public final class HTTPFrontServer: Sendable {
    /// The configuration new connections get; `reload` replaces it.
    private let current: Mutex<FrontContext>
    private var front: FrontContext { current.withLock { $0 } }
    private let group: MultiThreadedEventLoopGroup
    private let state = Mutex(State())

    private struct State {
        var serverChannels: [any Channel] = []
        var boundEndpoints: [ListenAddress.Endpoint] = []
        var children: [ObjectIdentifier: any Channel] = [:]
        var stopping = false
    }

    /// Compiles the configuration; throws the first error in nginx's words with file:line.
    public init(configuration: Configuration, modules: [any ContentModule] = [], logger: Logger,
                eventLoopGroup: MultiThreadedEventLoopGroup? = nil) throws(ConfigError) {
        let compiled = try FrontConfiguration(configuration, modules: modules)
        let pool = NIOThreadPool(numberOfThreads: max(2, min(8, compiled.workerThreads)))
        pool.start()
        if let eventLoopGroup {
            self.group = eventLoopGroup
        } else {
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: compiled.workerThreads)
            LoopAffinity.apply(compiled.cpuAffinity, to: group, logger: logger)
        }
        self.current = Mutex(FrontContext(configuration: compiled, threadPool: pool, logger: logger))
    }

    /// The event loops serving clients; a content module may create upstream connections on them.
    public var eventLoopGroup: any EventLoopGroup { group }

    /// Opens the access logs and binds every listen address.
    public func start() throws {
        for file in front.configuration.accessLogFiles {
            if let problem = file.open() {
                front.logger.error("\(problem)")
            }
        }
        for plan in front.configuration.listeners {
            let channel = try bind(plan)
            state.withLock { $0.serverChannels.append(channel); $0.boundEndpoints.append(plan.endpoint) }
            front.logger.notice("listening on \(FrontConfiguration.describe(plan.endpoint))")
        }
    }

    /// Serves `configuration` from now on (`gantry -s reload`): new connections get the new
    /// servers and locations; open connections finish their current response on the old ones and
    /// route their next request by the new (nginx's old workers close them instead, which fails
    /// requests a client is already sending on them). A `listen` not bound yet is bound; one no longer
    /// configured keeps listening until restart (its connections get the new configuration's
    /// default server). Throws, changing nothing, when the configuration does not compile.
    public func reload(configuration: Configuration, modules: [any ContentModule]) throws(ConfigError) {
        let compiled = try FrontConfiguration(configuration, modules: modules)
        let old = front
        if compiled.workerThreads != old.configuration.workerThreads || compiled.cpuAffinity != old.configuration.cpuAffinity {
            old.logger.warning("\"worker_processes\" and \"worker_cpu_affinity\" take effect at restart; the front keeps \(old.configuration.workerThreads) event loops as they are")
        }
        let next = FrontContext(configuration: compiled, threadPool: old.threadPool, logger: old.logger)
        for file in compiled.accessLogFiles {
            if let problem = file.open() { next.logger.error("\(problem)") }
        }
        current.withLock { $0 = next }
        let bound = state.withLock { $0.boundEndpoints }
        for plan in compiled.listeners where !bound.contains(plan.endpoint) {
            do {
                let channel = try bind(plan)
                state.withLock { $0.serverChannels.append(channel); $0.boundEndpoints.append(plan.endpoint) }
                next.logger.notice("listening on \(FrontConfiguration.describe(plan.endpoint))")
            } catch {
                next.logger.error("bind() to \(FrontConfiguration.describe(plan.endpoint)) failed (\(error))")
            }
        }
        let children = state.withLock { Array($0.children.values) }
        let event = ConfigurationReloadedEvent(currentPlan: { [self] plan in currentPlan(for: plan) })
        for child in children {
            child.pipeline.fireUserInboundEventTriggered(event)
        }
        // The old logs stay open a while for responses still finishing on old connections.
        group.next().scheduleTask(in: .seconds(60)) {
            for file in old.configuration.accessLogFiles where !compiled.accessLogFiles.contains(where: { $0 === file }) { file.close() }
        }
    }

    /// The current configuration's plan for a listening socket (its servers may have changed by a reload).
    private func currentPlan(for original: ListenerPlan) -> (FrontContext, ListenerPlan) {
        let front = self.front
        if let plan = front.configuration.listeners.first(where: { $0.endpoint == original.endpoint }) {
            return (front, plan)
        }
        if let fallback = front.configuration.listeners.first(where: {
            if case .tcp(_, let port) = $0.endpoint, case .tcp(_, let originalPort) = original.endpoint { return port == originalPort }
            return false
        }) {
            return (front, fallback)
        }
        return (front, original)
    }

    /// Re-opens every access log file (`-s reopen`, `USR1`, after logrotate moved them).
    public func reopenLogFiles() {
        for file in front.configuration.accessLogFiles {
            file.flush()
            if let problem = file.open() { front.logger.error("\(problem)") }
        }
    }

    /// Addresses actually bound (ports chosen by the OS for `listen 0` included).
    public var localAddresses: [SocketAddress] {
        state.withLock { state in state.serverChannels.compactMap { $0.localAddress } }
    }

    private func bind(_ plan: ListenerPlan) throws -> any Channel {
        let backlog = plan.parameters.compactMap { p -> Int32? in
            p.hasPrefix("backlog=") ? Int32(p.dropFirst(8)) : nil
        }.first ?? 511
        var bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 * 1024, high: 256 * 1024))
            .childChannelInitializer { [weak self] channel in
                let loop = channel.eventLoop
                guard let self else { return channel.close() }
                let (front, plan) = self.currentPlan(for: plan)
                let handler = HTTPConnectionHandler(front: front, plan: plan, engine: front.engines.engine(for: loop), eventLoop: loop)
                self.track(channel)
                return loop.makeCompletedFuture {
                    if let tls = plan.tls {
                        try tls.addHandlers(to: channel, fileIO: NonBlockingFileIO(threadPool: front.threadPool), logger: front.logger)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        if plan.parameters.contains("reuseport") {
            bootstrap = bootstrap.serverChannelOption(ChannelOptions.socket(SocketOptionLevel(SOL_SOCKET), SO_REUSEPORT), value: 1)
        }
        if case .tcp = plan.endpoint {
            bootstrap = bootstrap.childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
        }
        switch plan.endpoint {
        case .tcp(let host, let port):
            if let host, host.contains(":") {
                let v6only = !plan.parameters.contains("ipv6only=off")
                bootstrap = bootstrap.serverChannelOption(.ipOption(.ipv6_v6only), value: v6only ? 1 : 0)
                _ = bootstrap
                return try bootstrap.bind(host: host, port: port).wait()
            }
            return try bootstrap.bind(host: host ?? "0.0.0.0", port: port).wait()
        case .unix(let path):
            return try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
        }
    }

    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let stopping = state.withLock { state -> Bool in
            state.children[id] = channel
            return state.stopping
        }
        if stopping { channel.close(promise: nil) }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.state.withLock { _ = $0.children.removeValue(forKey: id) }
        }
    }

    /// Stops accepting, lets every connection finish its current response, then
    /// closes; connections still open after `timeout` are closed anyway.
    public func shutdownGracefully(timeout: TimeAmount = .seconds(10)) {
        let (servers, children) = state.withLock { state -> ([any Channel], [any Channel]) in
            state.stopping = true
            return (state.serverChannels, Array(state.children.values))
        }
        for server in servers { try? server.close().wait() }
        for child in children {
            child.pipeline.fireUserInboundEventTriggered(GracefulShutdownEvent())
        }
        let deadline = NIODeadline.now() + timeout
        while NIODeadline.now() < deadline {
            if state.withLock({ $0.children.isEmpty }) { break }
            usleep(20_000)
        }
        let remaining = state.withLock { state in Array(state.children.values) }
        for child in remaining { child.close(promise: nil) }
        for file in front.configuration.accessLogFiles { file.close() }
        // nginx removes its unix-domain sockets on exit.
        for plan in front.configuration.listeners {
            if case .unix(let path) = plan.endpoint { unlink(path) }
        }
        try? group.syncShutdownGracefully()
        try? front.threadPool.syncShutdownGracefully()
    }
}
