/// The timing rules of one pool: what the state machine needs, nothing about processes.
public struct PoolPolicy: Equatable, Sendable {
    /// Heartbeat backstop: a worker silent for longer is killed (`SIGKILL`). `0` disables it.
    /// The worker itself answers a request stuck past `--timeout` with 504 and exits;
    /// this catches a worker whose event loop is wedged.
    public var timeout: Double
    /// How long a worker may take to import the app and say `ready`. `0` disables it.
    public var bootTimeout: Double
    /// After `SIGQUIT`/`SIGTERM`, how long before `SIGKILL`.
    public var gracefulTimeout: Double
    /// A worker that exits sooner than this after being spawned "died at once".
    public var minimumUptime: Double
    /// Consecutive early deaths after which the pool gives up.
    public var maximumEarlyDeaths: Int
    /// First back-off delay after an early death; doubles each time up to `maximumBackoff`.
    public var initialBackoff: Double
    public var maximumBackoff: Double

    public init(
        timeout: Double = 30,
        bootTimeout: Double? = nil,
        gracefulTimeout: Double = 30,
        minimumUptime: Double = 1,
        maximumEarlyDeaths: Int = 5,
        initialBackoff: Double = 0.1,
        maximumBackoff: Double = 5
    ) {
        self.timeout = timeout
        self.bootTimeout = bootTimeout ?? (timeout > 0 ? max(timeout, 60) : 0)
        self.gracefulTimeout = gracefulTimeout
        self.minimumUptime = minimumUptime
        self.maximumEarlyDeaths = maximumEarlyDeaths
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
    }

    /// Delay before the next spawn after `earlyDeaths` consecutive early deaths.
    public func backoff(afterEarlyDeaths earlyDeaths: Int) -> Double {
        guard earlyDeaths > 0 else { return 0 }
        let exponent = min(earlyDeaths - 1, 30)
        return min(initialBackoff * Double(1 << exponent), maximumBackoff)
    }
}

/// `max_requests` with jitter, as gunicorn: each worker gets `max + random(0...jitter)`,
/// so workers started together do not all recycle at once.
public struct MaxRequestsPolicy: Equatable, Sendable {
    public var maxRequests: Int
    public var jitter: Int

    public init(maxRequests: Int, jitter: Int = 0) {
        self.maxRequests = maxRequests
        self.jitter = jitter
    }

    /// The limit for one new worker; `nil` when recycling is off (`max_requests` 0).
    public func limit<Generator: RandomNumberGenerator>(using generator: inout Generator) -> Int? {
        guard maxRequests > 0 else { return nil }
        guard jitter > 0 else { return maxRequests }
        return maxRequests + Int.random(in: 0...jitter, using: &generator)
    }
}
