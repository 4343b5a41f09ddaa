/// Identifies one worker process for the life of a supervisor (never reused,
/// so a late message from a dead worker cannot be mistaken for its replacement).
public struct WorkerID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int

    public init(_ rawValue: Int) {
        self.rawValue = rawValue
    }

    public static func < (lhs: WorkerID, rhs: WorkerID) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "#\(rawValue)" }
}

/// Where a worker is in its life, as the master sees it.
///
/// ```
/// spawning ─spawned→ booting ─ready→ serving ─recycle→ retiring
///                       │               │                 │
///                       └──── stop / scale down / replaced ┴→ stopping ─deadline→ killed
/// any state ─exit→ (removed)     booting/serving ─no heartbeat→ killed
/// ```
public enum WorkerState: Equatable, Sendable {
    /// The spawn was decided; the driver has not reported a pid yet.
    case spawning
    /// Running, importing the app; not yet `ready`.
    case booting
    /// `ready`: accepting requests.
    case serving
    /// Reached `max_requests`: still serving until its replacement is ready.
    case retiring
    /// Sent `SIGQUIT` (graceful) or `SIGTERM` (fast); `SIGKILL` at `deadline`.
    case stopping(graceful: Bool, deadline: MonotonicInstant)
    /// Sent `SIGKILL`; waiting to be reaped.
    case killed

    /// Counts toward the pool's worker count (a retiring or stopping worker is on its way out).
    public var isLive: Bool {
        switch self {
        case .spawning, .booting, .serving: true
        default: false
        }
    }

    /// Accepts requests now, so the front may route to it.
    public var isAccepting: Bool {
        self == .serving || self == .retiring
    }

    /// Already told to go away.
    public var isLeaving: Bool {
        switch self {
        case .stopping, .killed: true
        default: false
        }
    }
}

/// One worker process as the pool state machine tracks it.
public struct WorkerRecord: Equatable, Sendable {
    public let id: WorkerID
    /// Reload generation this worker runs the code of.
    public let generation: Int
    public var pid: Int32?
    public var state: WorkerState
    public let spawnedAt: MonotonicInstant
    /// Last `ready`/`heartbeat`/`recycle` line (or the spawn): the heartbeat backstop measures from here.
    public var lastHeard: MonotonicInstant
    public var readyAt: MonotonicInstant?

    public init(id: WorkerID, generation: Int, spawnedAt: MonotonicInstant) {
        self.id = id
        self.generation = generation
        self.pid = nil
        self.state = .spawning
        self.spawnedAt = spawnedAt
        self.lastHeard = spawnedAt
        self.readyAt = nil
    }

    /// `pid:N` for log lines, as gunicorn writes it.
    public var label: String {
        if let pid { return "pid:\(pid)" }
        return "worker \(id)"
    }
}
