import Balancer
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Active health checks for one upstream group: every `interval`, a `GET uri` to each
/// server over a fresh connection; `fails` failures in a row take it out of the balancer,
/// `passes` successes bring it back (nginx Plus's `health_check`).
final class HealthChecker: Sendable {
    let group: UpstreamGroup
    let settings: HealthCheckSettings
    let eventLoop: any EventLoop
    let logger: Logger
    private let state: NIOLockedValueBox<State>

    struct State {
        /// Per server; a server that joins (after `replaceServers`) starts healthy.
        var peers: [UpstreamAddress: HealthCheckState] = [:]
        var task: RepeatedTask?
        var stopped = false
    }

    init(group: UpstreamGroup, settings: HealthCheckSettings, eventLoop: any EventLoop, logger: Logger) {
        self.group = group
        self.settings = settings
        self.eventLoop = eventLoop
        self.logger = logger
        state = NIOLockedValueBox(State())
    }

    func start() {
        let task = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(settings.interval)) { [self] _ in
            checkAll()
        }
        state.withLockedValue { $0.task = task }
    }

    func stop() {
        let task = state.withLockedValue { state -> RepeatedTask? in
            state.stopped = true
            return state.task
        }
        task?.cancel()
    }

    private func checkAll() {
        let addresses = group.addresses
        state.withLockedValue { state in
            state.peers = state.peers.filter { addresses.contains($0.key) }
        }
        for address in addresses {
            probe(address).whenComplete { [self] result in
                let passed = (try? result.get()) ?? false
                record(address, passed: passed)
            }
        }
    }

    private func record(_ address: UpstreamAddress, passed: Bool) {
        let (fails, passes) = (settings.fails, settings.passes)
        let transition = state.withLockedValue { state -> HealthCheckState.Transition? in
            guard !state.stopped else { return nil }
            return state.peers[address, default: HealthCheckState(fails: fails, passes: passes)].record(passed: passed)
        }
        switch transition {
        case .becameUnhealthy:
            logger.warning("peer is unhealthy while checking status code, upstream \"\(group.name)\", peer \(address)")
            group.setHealthy(address, false)
        case .becameHealthy:
            logger.notice("peer is healthy again, upstream \"\(group.name)\", peer \(address)")
            group.setHealthy(address, true)
        case nil:
            break
        }
    }

    /// One check: true when the server answered 2xx/3xx within the timeout.
    private func probe(_ address: UpstreamAddress) -> EventLoopFuture<Bool> {
        let promise = eventLoop.makePromise(of: Bool.self)
        let timeout = TimeAmount.milliseconds(settings.timeout)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(HealthProbeHandler(promise: promise))
                }
            }
        let connected: EventLoopFuture<any Channel>
        switch address {
        case .unix(let path): connected = bootstrap.connect(unixDomainSocketPath: path)
        case .tcp(let host, let port):
            if let address = try? SocketAddress(ipAddress: host, port: port) {
                connected = bootstrap.connect(to: address)
            } else {
                connected = bootstrap.connect(host: host, port: port)
            }
        }
        let host: String
        switch address {
        case .tcp(let name, _): host = name
        case .unix: host = "localhost"
        }
        let uri = settings.uri
        connected.whenComplete { result in
            switch result {
            case .failure:
                promise.succeed(false)
            case .success(let channel):
                var headers = HTTPHeaders()
                headers.add(name: "Host", value: host)
                headers.add(name: "User-Agent", value: "gantry-health-check")
                headers.add(name: "Connection", value: "close")
                channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: headers)),
                              promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                let timer = channel.eventLoop.scheduleTask(in: timeout) { promise.succeed(false) }
                promise.futureResult.whenComplete { _ in
                    timer.cancel()
                    channel.close(promise: nil)
                }
            }
        }
        return promise.futureResult
    }
}

/// Completes the probe with the verdict on the response status.
private final class HealthProbeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let promise: EventLoopPromise<Bool>

    init(promise: EventLoopPromise<Bool>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            promise.succeed(HealthCheckState.passes(status: Int(head.status.code)))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.succeed(false)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(false)
        context.fireChannelInactive()
    }
}
