#if canImport(Glibc)
import Glibc
#endif

/// The `gantry spawner` process: serves ``PrivilegedSpawner`` requests until the master goes away.
/// Single-threaded (nothing here starts a thread), so `fork` is safe in it.
public enum SpawnerServer {
    public static func run(socket: Int32, policy: SpawnerPolicy) -> Never {
        var spawned = Set<Int32>()
        let programName = CommandLine.arguments.first ?? "gantry"
        while true {
            let message: (bytes: [UInt8], descriptors: [Int32])?
            do { message = try DescriptorPassing.receive(socket) } catch { _exit(1) }
            guard let message else { _exit(0) }  // the master is gone
            defer { message.descriptors.forEach { close($0) } }
            let reply: SpawnerReply
            if let request = SpawnerRequest(decoding: message.bytes) {
                if let refusal = policy.refusal(of: request, spawned: spawned) {
                    reply = .error(refusal)
                } else {
                    switch request {
                    case .spawn(let spawn):
                        reply = start(spawn, descriptors: message.descriptors, programName: programName)
                        if case .ok(let pid) = reply { spawned.insert(pid) }
                    case .signal(let pid, let signal):
                        // A pid it started may have been reaped and reused since: only a process of a
                        // configured account is signalled.
                        if let uid = processUID(of: pid), policy.allowed.contains(where: { $0.uid == uid }) {
                            reply = kill(pid, signal) == 0 ? .ok(0) : .error("kill(\(pid), \(signal)): \(String(cString: strerror(errno)))")
                        } else {
                            spawned.remove(pid)
                            reply = .error("pid \(pid) is gone")
                        }
                    }
                }
            } else {
                reply = .error("unreadable request")
            }
            do { try DescriptorPassing.send(socket, reply.encoded, descriptors: []) } catch { _exit(1) }
        }
    }

    /// The (effective) uid of a process: the owner of its `/proc/PID` directory.
    private static func processUID(of pid: pid_t) -> uid_t? {
        var info = stat()
        return stat("/proc/\(pid)", &info) == 0 ? info.st_uid : nil
    }

    /// Forks twice: the middle process exits at once, so the worker is adopted by the master (the
    /// subreaper). The worker sets up its descriptors, takes the account, and execs.
    private static func start(_ spawn: SpawnerRequest.Spawn, descriptors: [Int32], programName: String) -> SpawnerReply {
        guard descriptors.count >= (spawn.standardError ? 2 : 1) else { return .error("descriptors missing") }
        // The last one, when flagged, is the worker's stderr (the master's log relay); it is closed with the others.
        let standardError: Int32 = spawn.standardError ? descriptors.last! : -1
        let descriptors = spawn.standardError ? Array(descriptors.dropLast()) : descriptors
        var pidPipe: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pidPipe) == 0 else { return .error("socketpair: \(String(cString: strerror(errno)))") }
        defer { close(pidPipe[0]) }
        // Everything the child needs is prepared before fork.
        let argv = ([programName] + spawn.arguments).map { strdup($0) }
        defer { argv.forEach { free($0) } }
        let groups = spawn.credentials.groups

        let middle = fork()
        if middle < 0 {
            close(pidPipe[1])
            return .error("fork: \(String(cString: strerror(errno)))")
        }
        if middle == 0 {
            let worker = fork()
            if worker == 0 {
                becomeWorker(spawn, descriptors: descriptors, standardError: standardError, groups: groups, argv: argv)
            }
            var pid = worker
            _ = write(pidPipe[1], &pid, MemoryLayout<pid_t>.size)
            _exit(worker < 0 ? 1 : 0)
        }
        close(pidPipe[1])
        var status: Int32 = 0
        while waitpid(middle, &status, 0) < 0 && errno == EINTR {}
        var pid: pid_t = -1
        let count = read(pidPipe[0], &pid, MemoryLayout<pid_t>.size)
        guard count == MemoryLayout<pid_t>.size, pid > 0 else { return .error("fork failed") }
        return .ok(pid)
    }

    /// In the worker: descriptors on 0, 2, 3, 4, …; its own process group; the account; exec.
    private static func becomeWorker(_ spawn: SpawnerRequest.Spawn, descriptors: [Int32], standardError: Int32,
                                     groups: [gid_t], argv: [UnsafeMutablePointer<CChar>?]) -> Never {
        _ = setpgid(0, 0)
        var none = sigset_t()
        sigemptyset(&none)
        _ = sigprocmask(SIG_SETMASK, &none, nil)
        // Out of the way first (above every source and target), then onto 3, 4, … (dup2 clears CLOEXEC).
        let scratchBase = max(descriptors.max()!, WorkerLauncher.controlFD + Int32(descriptors.count), standardError) + 1
        var scratch: [Int32] = []
        for fd in descriptors {
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, scratchBase)
            if copy < 0 { _exit(126) }
            scratch.append(copy)
        }
        for (index, fd) in scratch.enumerated() where dup2(fd, WorkerLauncher.controlFD + Int32(index)) < 0 { _exit(126) }
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if null >= 0 { _ = dup2(null, 0) }
        if standardError >= 0 { _ = dup2(standardError, 2) }
        var groupList = groups
        guard setgroups(groupList.count, &groupList) == 0, setgid(spawn.credentials.gid) == 0,
              setuid(spawn.credentials.uid) == 0 else { _exit(126) }
        // A socket a killed predecessor left behind; removed as the pool's own user, in its directory.
        if let path = spawn.unlinkFirst { _ = unlink(path) }
        var cArgv = argv + [nil]
        execve(spawn.executable, &cArgv, environ)
        _exit(127)
    }
}
