/// Everything a worker process is told on its command line, checked.
public struct WorkerSettings: Sendable {
    public var binds: [WorkerBind] = []
    public var listenDescriptors: [Int32] = []
    public var threads = 1
    /// Every request on the Python thread, none on the event loop (`--same-thread`): one OS thread
    /// runs the app, as in gunicorn's sync worker, for apps that keep thread-bound objects.
    public var sameThread = false
    /// Seconds a request may run; 0 turns the limit off.
    public var timeout: Double = 30
    public var gracefulTimeout: Double = 30
    public var keepAlive: Double = 2
    /// Seconds a new connection gets to send a complete request head.
    public var headerTimeout: Double = 10
    public var maxRequests = 0
    /// 0: unlimited.
    public var limitRequestBody = 0
    public var environ = EnvironSettings(rootPath: "", trust: try! ForwardedTrust(parsing: ForwardedTrust.gunicornDefault))
    public var controlDescriptor: Int32?
    /// Exit when the parent process changes (`gantry serve`'s workers).
    public var parentPID: Int32?
    public var multiprocess = false
    public var accessLog: LogSink?

    public init() {}

    /// Heartbeats go out at least every `timeout / 2`: every quarter, at most 5 s apart.
    public var heartbeatInterval: Double {
        timeout > 0 ? max(0.25, min(timeout / 4, 5)) : 1
    }
}

/// Why a worker process ends; the command maps each to a `WorkerExitCode`.
public enum WorkerStopReason: Sendable, Equatable {
    case normal
    case requestTimeout
    case bindFailure(String)
    case failure(String)
}
