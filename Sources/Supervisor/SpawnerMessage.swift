/// The requests the master sends its ``PrivilegedSpawner`` (one SOCK_SEQPACKET message each,
/// NUL-separated fields), and the replies. Kept free of I/O so it is tested apart.
public enum SpawnerRequest: Equatable, Sendable {
    /// Start `executable arguments…` as `credentials`, with the passed descriptors on fd 3, 4, …
    /// `standardError`: the last descriptor passed is the worker's stderr (the master's log relay).
    /// `unlinkFirst`: a stale socket path the worker removes (as its own user) before exec.
    case spawn(Spawn)
    /// Deliver `signal` to a worker this spawner started (the master, another user, may not).
    case signal(pid: Int32, signal: Int32)

    public struct Spawn: Equatable, Sendable {
        public var credentials: WorkerCredentials
        public var standardError: Bool
        public var unlinkFirst: String?
        public var executable: String
        public var arguments: [String]

        public init(credentials: WorkerCredentials, standardError: Bool, unlinkFirst: String?,
                    executable: String, arguments: [String]) {
            self.credentials = credentials
            self.standardError = standardError
            self.unlinkFirst = unlinkFirst
            self.executable = executable
            self.arguments = arguments
        }
    }

    public var encoded: [UInt8] {
        let fields: [String]
        switch self {
        case .spawn(let spawn):
            fields = ["spawn", spawn.credentials.encoded, spawn.standardError ? "stderr" : "", spawn.unlinkFirst ?? "", spawn.executable]
                + spawn.arguments
        case .signal(let pid, let signal):
            fields = ["signal", String(pid), String(signal)]
        }
        return Array(fields.joined(separator: "\0").utf8)
    }

    public init?(decoding bytes: some Collection<UInt8>) {
        let fields = bytes.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        switch fields.first {
        case "spawn":
            guard fields.count >= 5, let credentials = WorkerCredentials(encoded: fields[1]) else { return nil }
            self = .spawn(Spawn(credentials: credentials,
                                standardError: fields[2] == "stderr",
                                unlinkFirst: fields[3].isEmpty ? nil : fields[3],
                                executable: fields[4], arguments: Array(fields.dropFirst(5))))
        case "signal":
            guard fields.count == 3, let pid = Int32(fields[1]), let signal = Int32(fields[2]) else { return nil }
            self = .signal(pid: pid, signal: signal)
        default:
            return nil
        }
    }
}

/// `ok PID` (the worker's pid, or 0 for a signal) or `error TEXT`.
public enum SpawnerReply: Equatable, Sendable {
    case ok(Int32)
    case error(String)

    public var encoded: [UInt8] {
        switch self {
        case .ok(let pid): Array("ok \(pid)".utf8)
        case .error(let text): Array("error \(text)".utf8)
        }
    }

    public init(decoding bytes: some Collection<UInt8>) {
        let text = String(decoding: bytes, as: UTF8.self)
        if text.hasPrefix("ok "), let pid = Int32(text.dropFirst(3)) {
            self = .ok(pid)
        } else if text.hasPrefix("error ") {
            self = .error(String(text.dropFirst(6)))
        } else {
            self = .error("unreadable reply from the spawner: \(text)")
        }
    }
}

/// What the spawner accepts: accounts named at its start (never root), its own binary only.
/// It opens no file for a request: a worker's descriptors all come from the master.
public struct SpawnerPolicy: Sendable {
    public var allowed: Set<WorkerCredentials>

    public init(allowed: Set<WorkerCredentials>) {
        self.allowed = allowed
    }

    /// Why `request` is refused, or nil.
    public func refusal(of request: SpawnerRequest, spawned: Set<Int32>) -> String? {
        switch request {
        case .spawn(let spawn):
            if spawn.credentials.uid == 0 || spawn.credentials.gid == 0 { return "workers never run as root" }
            if !allowed.contains(spawn.credentials) { return "\(spawn.credentials) is not an account of the configuration" }
            if spawn.executable != "/proc/self/exe" { return "only gantry itself is started" }
            if spawn.arguments.first != "worker" { return "only `gantry worker` is started" }
            return nil
        case .signal(let pid, _):
            return spawned.contains(pid) ? nil : "pid \(pid) is not a worker of this spawner"
        }
    }
}
