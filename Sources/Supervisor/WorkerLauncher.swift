#if canImport(Glibc)
import Glibc
#endif

/// Starts worker processes with `posix_spawn` (never `fork` from the threaded master):
/// the running binary is re-exec'd with the control channel on fd 3 and inherited
/// listening sockets on fds 4, 5, … — the only descriptors a worker inherits
/// besides stdin (`/dev/null`), stdout and stderr, since the master opens everything with `CLOEXEC`.
enum WorkerLauncher {
    static let controlFD: Int32 = 3
    static let firstListenFD: Int32 = 4

    struct Launched {
        var pid: pid_t
        /// The master's end of the control channel (non-blocking, `CLOEXEC`).
        var control: Int32
    }

    /// The worker's argv after the program name.
    static func arguments(for configuration: PoolConfiguration, id: WorkerID, maxRequests: Int?) -> [String] {
        var arguments = configuration.arguments
        arguments += ["--control-fd", String(controlFD)]
        switch configuration.sockets {
        case .shared(let fds):
            for index in fds.indices {
                arguments += ["--listen-fd", String(firstListenFD + Int32(index))]
            }
        case .perWorker:
            if let path = configuration.socketPath(for: id) {
                arguments += ["--bind", "unix:\(path)"]
            }
        }
        if let maxRequests {
            arguments += ["--max-requests", String(maxRequests)]
        }
        return arguments
    }

    static func launch(executable: String, arguments: [String], sharedFDs: [Int32]) throws(SystemError) -> Launched {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw SystemError("socketpair", errno)
        }
        let (masterEnd, workerEnd) = (pair[0], pair[1])
        defer { close(workerEnd) }
        _ = fcntl(masterEnd, F_SETFL, fcntl(masterEnd, F_GETFL) | O_NONBLOCK)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        // Move every source out of the way first (above all sources and targets), so that
        // no dup2 onto fd 3, 4, … can clobber a source not yet copied.
        let sources = [workerEnd] + sharedFDs
        let targets = (0..<Int32(sources.count)).map { controlFD + $0 }
        let scratchBase = (sources + targets).max()! + 1
        for (index, source) in sources.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, source, scratchBase + Int32(index))
        }
        for (index, target) in targets.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, scratchBase + Int32(index), target)
            posix_spawn_file_actions_addclose(&actions, scratchBase + Int32(index))
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // Whatever else the master holds without CLOEXEC (a library's pipe, a test harness's fds) stays behind.
        closeDescriptors(from: controlFD + Int32(sources.count), in: &actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        // Handlers reset on exec by themselves; ignored signals would not.
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        // Its own process group: a terminal's Ctrl-C or a group-wide HUP reaches the master only,
        // which then stops or reloads the workers in order, instead of every worker dying at once.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        // `ps` shows the binary's own name rather than `/proc/self/exe`.
        let programName = executable == "/proc/self/exe" ? (CommandLine.arguments.first ?? executable) : executable
        let argv = ([programName] + arguments).map { strdup($0) }
        defer { argv.forEach { free($0) } }
        var cArgv: [UnsafeMutablePointer<CChar>?] = argv + [nil]

        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, &cArgv, environ)
        guard status == 0 else {
            close(masterEnd)
            throw SystemError("posix_spawn \(executable)", status)
        }
        return Launched(pid: pid, control: masterEnd)
    }
}

extension WorkerLauncher {
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32

    /// glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np`, which Swift's Glibc module does not import.
    private static let closeFrom: CloseFrom? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: CloseFrom.self)
    }()

    /// Adds "close every descriptor from `first` on" to the child's file actions.
    static func closeDescriptors(from first: Int32, in actions: inout posix_spawn_file_actions_t) {
        if let closeFrom, closeFrom(&actions, first) == 0 { return }
        // Older glibc: close what is open now, one by one.
        guard let directory = opendir("/proc/self/fd") else { return }
        defer { closedir(directory) }
        let own = dirfd(directory)
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let fd = Int32(name), fd >= first, fd != own {
                posix_spawn_file_actions_addclose(&actions, fd)
            }
        }
    }
}

/// A failed system call, with the errno text.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var code: Int32

    public init(_ operation: String, _ code: Int32) {
        self.operation = operation
        self.code = code
    }

    public var description: String { "\(operation): \(String(cString: strerror(code)))" }
}
