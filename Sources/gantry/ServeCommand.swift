import ArgumentParser
import Dispatch
import Foundation
import Supervisor
import WSGI

/// `gantry serve`: the development server. One worker on 127.0.0.1:8000,
/// restarted when a `.py` file under the app directory changes. The parent binds
/// the sockets once and hands them to each worker (`--listen-fd`), so a reload
/// never refuses a connection. Loopback by default, bodies bounded (10 MiB),
/// requests timed out: safe to leave running.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Development server: one worker, reload on change.")

    @OptionGroup var options: WorkerOptions

    @Flag(inversion: .prefixedNo, help: "Restart the worker when a .py file changes.")
    var reload = true

    @Option(name: .customLong("reload-interval"), help: "Seconds between checks for changed files.")
    var reloadInterval: Double = 1

    static let defaultBodyLimit = 10 * 1024 * 1024

    func run() throws {
        let binds = options.bind.isEmpty && options.listenFD.isEmpty ? ["127.0.0.1:8000"] : options.bind
        var descriptors = options.listenFD
        for text in binds {
            do {
                descriptors.append(try ListeningSocketFactory.open(try WorkerBind(parsing: text)))
            } catch {
                FileHandle.standardError.write(Data("gantry serve: cannot listen on \(text): \(error)\n".utf8))
                throw ExitCode(WorkerExitCode.bindFailure.rawValue)
            }
            FileHandle.standardError.write(Data("gantry serve: serving \(options.app) on http://\(text)\(reload ? " (reload on change)" : "")\n".utf8))
        }
        let arguments = ["worker"] + options.arguments(replacingBinds: [], listenFDs: descriptors,
                                                        limitRequestBody: options.limitRequestBody ?? Self.defaultBodyLimit)
            + ["--parent-pid", String(getpid())]
        let watchRoot = options.chdir ?? FileManager.default.currentDirectoryPath
        let reloader = DevReloader(arguments: arguments, watchRoot: watchRoot, reload: reload, interval: max(0.1, reloadInterval))
        reloader.run()
    }
}

/// Binds listening sockets in the parent (inheritable: no `CLOEXEC`).
enum ListeningSocketFactory {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func open(_ address: WorkerBind) throws -> Int32 {
        switch address {
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
            var result: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &result)
            guard status == 0, let info = result else { throw Failure(description: String(cString: gai_strerror(status))) }
            defer { freeaddrinfo(result) }
            let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: String(cString: strerror(errno))) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, 1024) == 0 else {
                let message = String(cString: strerror(errno))
                close(fd)
                throw Failure(description: message)
            }
            return fd
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: String(cString: strerror(errno))) }
            unlink(path)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw Failure(description: "socket path too long") }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard result == 0, listen(fd, 1024) == 0 else {
                let message = String(cString: strerror(errno))
                close(fd)
                throw Failure(description: message)
            }
            return fd
        }
    }
}

/// Runs `gantry worker` as a child and restarts it when watched files change.
final class DevReloader: @unchecked Sendable {
    let arguments: [String]
    let watchRoot: String
    let reload: Bool
    let interval: Double
    private var child: pid_t = 0
    private let stopping = ManagedFlag()
    private var signalSources: [any DispatchSourceSignal] = []

    init(arguments: [String], watchRoot: String, reload: Bool, interval: Double) {
        self.arguments = arguments
        self.watchRoot = watchRoot
        self.reload = reload
        self.interval = interval
    }

    func run() -> Never {
        let queue = DispatchQueue(label: "gantry.serve.signals")
        for number in [SIGINT, SIGTERM, SIGQUIT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [self] in stopping.set() }
            source.resume()
            signalSources.append(source)
        }
        var snapshot = reload ? Self.snapshot(watchRoot) : [:]
        var waitingForChange = false
        spawn()
        while true {
            if stopping.isSet { stopChild(); Foundation.exit(0) }
            usleep(UInt32(interval * 1_000_000))
            if stopping.isSet { stopChild(); Foundation.exit(0) }
            var status: Int32 = 0
            if child > 0, waitpid(child, &status, WNOHANG) == child {
                child = 0
                let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
                let permanent = WorkerExitCode(rawValue: code)?.isPermanent ?? false
                if !reload {
                    Foundation.exit(code >= 0 ? code : 1)
                }
                if permanent {
                    log("the worker cannot start (exit code \(code)); waiting for a file change")
                    waitingForChange = true
                } else {
                    log("the worker exited (status \(code)); restarting")
                    spawn()
                }
            }
            guard reload else { continue }
            let current = Self.snapshot(watchRoot)
            if let changed = Self.firstChange(from: snapshot, to: current) {
                snapshot = current
                log("\(changed) changed; reloading")
                stopChild()
                waitingForChange = false
                spawn()
            } else if waitingForChange {
                continue
            }
        }
    }

    private func log(_ message: String) {
        FileHandle.standardError.write(Data("gantry serve: \(message)\n".utf8))
    }

    private func spawn() {
        let executable = CommandLine.arguments[0].contains("/") ? CommandLine.arguments[0] : "/proc/self/exe"
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? executable
        let argv = [path] + arguments
        var cArguments = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, nil, nil, &cArguments, environ)
        if result != 0 {
            log("cannot start the worker: \(String(cString: strerror(result)))")
            return
        }
        child = pid
    }

    private func stopChild() {
        guard child > 0 else { return }
        kill(child, SIGTERM)
        var status: Int32 = 0
        for _ in 0..<100 {
            if waitpid(child, &status, WNOHANG) == child { child = 0; return }
            usleep(50_000)
        }
        kill(child, SIGKILL)
        waitpid(child, &status, 0)
        child = 0
    }

    /// Modification times of the `.py` files under `root` (skipping hidden
    /// directories, caches and virtualenvs; bounded).
    static func snapshot(_ root: String) -> [String: Date] {
        var result: [String: Date] = [:]
        let manager = FileManager.default
        guard let enumerator = manager.enumerator(at: URL(fileURLWithPath: root), includingPropertiesForKeys: [.contentModificationDateKey, .isDirectoryKey],
                                                  options: [.skipsHiddenFiles]) else { return result }
        for case let url as URL in enumerator {
            let name = url.lastPathComponent
            if name == "__pycache__" || name == "node_modules" || name == "site-packages" {
                enumerator.skipDescendants()
                continue
            }
            if manager.fileExists(atPath: url.appendingPathComponent("pyvenv.cfg").path) {
                enumerator.skipDescendants()
                continue
            }
            guard name.hasSuffix(".py") else { continue }
            let date = (try? url.resourceValues(forKeys: [.contentModificationDateKey]))?.contentModificationDate ?? .distantPast
            result[url.path] = date
            if result.count >= 20_000 { break }
        }
        return result
    }

    static func firstChange(from old: [String: Date], to new: [String: Date]) -> String? {
        for (path, date) in new where old[path] != date { return path }
        for path in old.keys where new[path] == nil { return path }
        return nil
    }
}

/// A flag set from a signal handler queue and read by the main loop.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
