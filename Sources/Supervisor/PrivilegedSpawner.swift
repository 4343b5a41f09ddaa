#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Starts workers as another account than the master's.
///
/// The stack's master drops root once its ports are bound, and it runs the front's threads, so
/// it can neither switch a child to another user nor `fork`. Before dropping, it starts this
/// helper: `gantry spawner`, a re-exec'd, single-threaded process that keeps root and does only
/// two things on request — start `gantry worker` as one of the accounts named at its start
/// (never root), and signal the workers it started. Each worker is forked twice so that it is
/// re-parented to the master (a child subreaper), which reaps it and reads its control channel
/// as it does for its own children. The spawner exits when the master's end closes.
public final class PrivilegedSpawner: @unchecked Sendable {  // the socket is used under `lock`
    public let pid: pid_t
    private let socket: Int32
    private let lock = NSLock()

    /// The spawner's end of the request socket, in the spawner process.
    public static let requestFD: Int32 = WorkerLauncher.firstListenFD

    private init(pid: pid_t, socket: Int32) {
        self.pid = pid
        self.socket = socket
    }

    deinit { close(socket) }

    /// Starts `executable spawner --allow …` (call it while still root), and makes this process
    /// the child subreaper that will adopt the workers.
    public static func start(allowed: [WorkerCredentials], executable: String = "/proc/self/exe") throws(SystemError) -> PrivilegedSpawner {
        guard setChildSubreaper() else { throw SystemError("prctl(PR_SET_CHILD_SUBREAPER)", errno) }
        var pair: [Int32] = [-1, -1]
        let type = Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &pair) == 0 else { throw SystemError("socketpair", errno) }
        defer { close(pair[1]) }
        var arguments = ["spawner"]
        for credentials in allowed { arguments += ["--allow", credentials.encoded] }
        let launched: WorkerLauncher.Launched
        do {
            launched = try WorkerLauncher.launch(executable: executable, arguments: arguments, sharedFDs: [pair[1]])
        } catch {
            close(pair[0])
            throw error
        }
        // Its fd 3 (a worker's control channel) is unused: the request socket's end-of-file stops it.
        close(launched.control)
        return PrivilegedSpawner(pid: launched.pid, socket: pair[0])
    }

    /// Like ``WorkerLauncher/launch(executable:arguments:sharedFDs:)``, as `credentials`.
    func launch(executable: String, arguments: [String], sharedFDs: [Int32], credentials: WorkerCredentials,
                       standardError: Int32?, unlinkFirst: String?) throws(SystemError) -> WorkerLauncher.Launched {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw SystemError("socketpair", errno)
        }
        let (masterEnd, workerEnd) = (pair[0], pair[1])
        defer { close(workerEnd) }
        let request = SpawnerRequest.spawn(.init(credentials: credentials, standardError: standardError != nil, unlinkFirst: unlinkFirst,
                                                 executable: executable, arguments: arguments))
        switch try exchange(request, descriptors: [workerEnd] + sharedFDs + (standardError.map { [$0] } ?? [])) {
        case .ok(let pid):
            _ = fcntl(masterEnd, F_SETFL, fcntl(masterEnd, F_GETFL) | O_NONBLOCK)
            return WorkerLauncher.Launched(pid: pid, control: masterEnd)
        case .error(let text):
            close(masterEnd)
            throw SystemError("spawner: \(text)", EPERM)
        }
    }

    /// `kill(pid, signal)` done by the spawner, for a worker it started.
    public func signal(_ pid: pid_t, _ signal: Int32) {
        _ = try? exchange(.signal(pid: pid, signal: signal), descriptors: [])
    }

    private func exchange(_ request: SpawnerRequest, descriptors: [Int32]) throws(SystemError) -> SpawnerReply {
        lock.lock()
        defer { lock.unlock() }
        try DescriptorPassing.send(socket, request.encoded, descriptors: descriptors)
        guard let reply = try DescriptorPassing.receive(socket, maximumDescriptors: 0) else {
            throw SystemError("spawner exited", EPIPE)
        }
        return SpawnerReply(decoding: reply.bytes)
    }

    private typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32

    /// `prctl(PR_SET_CHILD_SUBREAPER, 1)`; prctl is variadic, which Swift does not import.
    private static func setChildSubreaper() -> Bool {
        guard let symbol = dlsym(nil, "prctl") else { return false }
        let prctl = unsafeBitCast(symbol, to: Prctl.self)
        return prctl(36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0, 0) == 0
    }
}
