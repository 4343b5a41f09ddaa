import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import Supervisor

/// `gantry wsgi`: the gunicorn-style app server. The flags keep gunicorn's names, so
/// `gunicorn -w 4 -b 127.0.0.1:8000 app:application` becomes `gantry wsgi -w 4 -b 127.0.0.1:8000 app:application`.
///
/// This process is the arbiter: it binds the sockets once, then runs a ``Supervisor``
/// with one pool of `gantry worker` processes that share them.
struct WSGICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wsgi",
        abstract: "Run a WSGI app, gunicorn-style: an arbiter and N worker processes.",
        discussion: """
        Signals: TERM/INT stop fast, QUIT stops gracefully, HUP reloads (new workers, then the old ones drain), \
        TTIN/TTOU add/remove a worker, USR1 re-opens the log files (the arbiter's and the workers').
        """
    )

    @Argument(help: "The app as MODULE:CALLABLE (or MODULE:FACTORY()).")
    var app: String

    @Option(name: [.customShort("w"), .long], help: "Number of worker processes (default: $WEB_CONCURRENCY or 1).")
    var workers: Int?

    @Option(name: [.customShort("b"), .long], help: "Address to listen on: HOST:PORT, unix:PATH or fd://N (repeatable; default 127.0.0.1:8000, or 0.0.0.0:$PORT).")
    var bind: [String] = []

    @Option(help: "Listen queue length of each bound socket.")
    var backlog: Int32 = 2048

    @Option(name: .long, help: "Seconds an idle keep-alive connection stays open.")
    var keepAlive: Double?

    @Option(help: "Threads per worker (concurrent requests in one process).")
    var threads: Int?

    @Flag(name: .customLong("same-thread"), help: "With --threads 1: run every request on the worker's one Python thread, never on its event loop (slower; for apps that keep thread-bound objects, e.g. a sqlite3 connection, across requests).")
    var sameThread = false

    @Option(name: [.customShort("t"), .long], help: "Seconds before a request is answered 504 and its worker replaced; also the heartbeat limit. 0 disables.")
    var timeout: Int = 30

    @Option(name: .long, help: "Seconds a worker gets to finish in-flight requests after QUIT/HUP before SIGKILL.")
    var gracefulTimeout: Int = 30

    @Option(name: .long, help: "Recycle a worker after this many requests (0: never).")
    var maxRequests: Int = 0

    @Option(name: .long, help: "Add up to this many (random) to each worker's --max-requests.")
    var maxRequestsJitter: Int = 0

    @Option(help: "Change to this directory before loading the app.")
    var chdir: String?

    @Option(help: "Directories to add to the Python path (comma-separated, repeatable).")
    var pythonpath: [String] = []

    @Option(name: [.customShort("e"), .long], help: "Environment variable for the app, KEY=VALUE (repeatable).")
    var env: [String] = []

    @Option(help: "The Python interpreter (a virtualenv's bin/python) whose libpython and packages to use.")
    var python: String?

    @Option(name: [.customShort("p"), .long], help: "Write the arbiter's pid to this file.")
    var pid: String?

    @Option(name: .long, help: "Access log file ('-' for stdout).")
    var accessLogfile: String?

    @Option(name: .long, help: "Error log file ('-' for stderr, the default).")
    var errorLogfile: String?

    @Option(name: .long, help: "debug, info, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: [.customShort("m"), .long], help: "umask (octal) for the processes, e.g. 0o007; also applies to Unix sockets.")
    var umask: String?

    @Option(name: .long, help: "Front-end IPs trusted to set X-Forwarded-* headers (comma-separated, * for all).")
    var forwardedAllowIps: String?

    @Option(name: .long, help: "SCRIPT_NAME the app is mounted at.")
    var rootPath: String?

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if sameThread, let threads, threads > 1 { throw ValidationError("--same-thread needs --threads 1 (with more threads, requests run on any of them)") }
        if backlog < 1 { throw ValidationError("--backlog must be at least 1") }
        if let keepAlive, keepAlive < 0 { throw ValidationError("--keep-alive cannot be negative") }
        if timeout < 0 || gracefulTimeout < 0 { throw ValidationError("timeouts cannot be negative") }
        if maxRequests < 0 || maxRequestsJitter < 0 { throw ValidationError("--max-requests cannot be negative") }
        guard Self.logLevels[logLevel.lowercased()] != nil else {
            throw ValidationError("--log-level must be one of debug, info, warning, error, critical")
        }
        if let umask, Self.parseOctal(umask) == nil { throw ValidationError("invalid --umask \"\(umask)\" (octal, e.g. 0o022)") }
        for value in bind { _ = try BindAddress(parsing: value) }
        for value in env where !value.contains("=") { throw ValidationError("--env \"\(value)\" must be KEY=VALUE") }
    }

    func run() throws {
        let level = Self.logLevels[logLevel.lowercased()] ?? .info
        let destination: LogDestination
        do {
            destination = try LogDestination(path: errorLogfile)
        } catch {
            throw ValidationError("cannot open --error-logfile: \(error)")
        }
        let logger = Logger(label: "gantry.arbiter") { _ in ArbiterLogHandler(destination: destination, level: level) }
        logger.info("Starting gantry")

        let mask = umask.flatMap(Self.parseOctal).map { mode_t($0) }
        let addresses = try (bind.isEmpty ? [Self.defaultBind] : bind).map { try BindAddress(parsing: $0) }
        var listeners: [ListeningSocket] = []
        for address in addresses {
            do {
                listeners.append(try ListeningSocket.bind(address, backlog: backlog, umask: mask))
            } catch {
                logger.error("Connection in use or not permitted: \(address) (\(error))")
                listeners.forEach { $0.close() }
                throw ExitCode(1)
            }
        }
        defer { listeners.forEach { $0.close() } }
        logger.info("Listening at: \(listeners.map { "\($0.address)" }.joined(separator: ", ")) (\(getpid()))")
        logger.info("Using worker: gantry (threads: \(threads ?? 1))")

        let pidFile = pid.map(PidFile.init(path:))
        do {
            try pidFile?.write()
        } catch {
            logger.error("Cannot write the pid file: \(error)")
            throw ExitCode(1)
        }
        defer { pidFile?.remove() }

        let count = workers ?? Self.defaultWorkers
        let policy = PoolPolicy(timeout: Double(timeout), gracefulTimeout: Double(gracefulTimeout))
        let pool = PoolConfiguration(
            name: "wsgi",
            workers: count,
            arguments: workerArguments(),
            sockets: .shared(listeners.map(\.fd)),
            policy: policy,
            maxRequests: MaxRequestsPolicy(maxRequests: maxRequests, jitter: maxRequestsJitter)
        )

        let signals = try SignalQueue(signals: [SIGHUP, SIGQUIT, SIGINT, SIGTERM, SIGTTIN, SIGTTOU, SIGCHLD, SIGUSR1])
        let supervisor = try Supervisor(pools: [pool], logger: logger)
        let signalThread = Thread { Self.handleSignals(signals, supervisor: supervisor, logger: logger, destination: destination) }
        signalThread.start()

        var failure: PoolFailure?
        do {
            try supervisor.start()
            if !supervisor.isFinished { logger.info("Ready: \(count) worker(s) serving \(app)") }
            failure = supervisor.waitUntilStopped()
        } catch let error as PoolFailure {
            failure = error
        }
        signals.wake()
        logger.info("Shutting down: Master")
        if let failure {
            logger.info("Reason: \(failure.reason)")
            // gunicorn exits 3 when a worker fails to boot.
            throw ExitCode(3)
        }
    }

    /// The signal-queue thread: turns signals into supervisor commands until the supervisor is done.
    private static func handleSignals(_ signals: SignalQueue, supervisor: Supervisor, logger: Logger, destination: LogDestination) {
        while !supervisor.isFinished {
            guard let number = signals.next(timeout: 1) else { continue }
            if number != SIGCHLD && number != 0 {
                logger.info("Handling signal: \(signalName(number).dropFirst(3).lowercased())")
            }
            switch number {
            case SIGHUP: supervisor.reload()
            case SIGQUIT: supervisor.stop(graceful: true)
            case SIGINT, SIGTERM: supervisor.stop(graceful: false)
            case SIGTTIN: supervisor.changeWorkerCount(by: 1)
            case SIGTTOU: supervisor.changeWorkerCount(by: -1)
            case SIGCHLD: supervisor.childExited()
            case SIGUSR1:
                destination.reopen()
                supervisor.signalWorkers(SIGUSR1)
            default: break
            }
        }
    }

    /// `gantry worker` arguments: the app and every flag the worker shares with gunicorn.
    /// The supervisor adds `--control-fd`, `--listen-fd` and `--max-requests`.
    func workerArguments() -> [String] {
        var arguments = ["worker", app]
        func add(_ flag: String, _ value: String?) {
            if let value { arguments += [flag, value] }
        }
        add("--python", python)
        add("--chdir", chdir)
        for path in pythonpath { add("--pythonpath", path) }
        for variable in env { add("--env", variable) }
        add("--threads", threads.map(String.init))
        if sameThread { arguments.append("--same-thread") }
        add("--timeout", String(timeout))
        add("--keep-alive", keepAlive.map { String($0) })
        add("--graceful-timeout", String(gracefulTimeout))
        add("--root-path", rootPath)
        add("--forwarded-allow-ips", forwardedAllowIps)
        add("--umask", umask)
        add("--access-logfile", accessLogfile)
        add("--error-logfile", errorLogfile)
        add("--log-level", logLevel.lowercased())
        return arguments
    }

    private static let logLevels: [String: Logger.Level] = [
        "debug": .debug, "info": .info, "warning": .warning, "error": .error, "critical": .critical,
    ]

    /// gunicorn's default: `0.0.0.0:$PORT` when `PORT` is set (Heroku and friends), else `127.0.0.1:8000`.
    private static var defaultBind: String {
        if let value = getenv("PORT"), let port = Int(String(cString: value)) { return "0.0.0.0:\(port)" }
        return "127.0.0.1:8000"
    }

    private static var defaultWorkers: Int {
        if let value = getenv("WEB_CONCURRENCY"), let count = Int(String(cString: value)), count > 0 { return count }
        return 1
    }

    /// gunicorn's umask forms: `0o22`, `022`, `0x12`, `18`.
    static func parseOctal(_ text: String) -> Int? {
        if text.hasPrefix("0o") { return Int(text.dropFirst(2), radix: 8) }
        if text.hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
        if text.hasPrefix("0") && text.count > 1 { return Int(text.dropFirst(), radix: 8) }
        return Int(text)
    }
}
