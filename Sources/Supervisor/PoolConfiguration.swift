/// How a pool's workers get their listening sockets.
public enum WorkerSockets: Equatable, Sendable {
    /// Sockets bound once by the master (`gantry wsgi -b …`), passed to every
    /// worker as `--listen-fd N`: the kernel balances accepts, and a reload keeps them.
    case shared([Int32])
    /// Each worker binds its own Unix socket `DIRECTORY/POOL.N.sock` (`--bind unix:…`);
    /// the front balances over the pool's current set (see ``PoolEndpoints``).
    case perWorker(directory: String)
}

/// Everything the supervisor needs to run one pool of `gantry worker` processes.
public struct PoolConfiguration: Sendable {
    public var name: String
    public var workers: Int
    public var policy: PoolPolicy
    public var maxRequests: MaxRequestsPolicy
    /// The program to re-exec; the running binary by default.
    public var executable: String
    /// Arguments after the program name, e.g. `["worker", "app:application", "--threads", "2"]`.
    /// The supervisor appends `--control-fd`, the sockets and `--max-requests`.
    public var arguments: [String]
    public var sockets: WorkerSockets
    /// Another account than the master's (`user` in an `app_pool`): started by the ``PrivilegedSpawner``.
    public var credentials: WorkerCredentials?
    /// With `credentials`: the workers' stderr (a ``LogRelay``'s pipe, so that their lines reach the
    /// error log the master re-opens on `USR1`, which their account may not be able to open).
    public var standardErrorFD: Int32?

    public init(
        name: String,
        workers: Int,
        arguments: [String],
        sockets: WorkerSockets,
        policy: PoolPolicy = PoolPolicy(),
        maxRequests: MaxRequestsPolicy = MaxRequestsPolicy(maxRequests: 0),
        executable: String = "/proc/self/exe"
    ) {
        self.name = name
        self.workers = workers
        self.arguments = arguments
        self.sockets = sockets
        self.policy = policy
        self.maxRequests = maxRequests
        self.executable = executable
    }

    /// The per-worker socket path, when workers bind their own.
    public func socketPath(for id: WorkerID) -> String? {
        guard case .perWorker(let directory) = sockets else { return nil }
        let trimmed = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        return "\(trimmed)/\(name).\(id.rawValue).sock"
    }
}

/// What the front needs to route to a pool right now.
public struct PoolEndpoints: Equatable, Sendable {
    /// The generation taking traffic (0 before start-up completes).
    public var generation: Int
    /// Unix socket paths of the accepting workers (empty with shared sockets).
    public var socketPaths: [String]
    /// Pids of the accepting workers.
    public var pids: [Int32]

    public init(generation: Int = 0, socketPaths: [String] = [], pids: [Int32] = []) {
        self.generation = generation
        self.socketPaths = socketPaths
        self.pids = pids
    }
}
