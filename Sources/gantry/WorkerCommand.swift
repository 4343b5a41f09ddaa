import ArgumentParser
import CPython
import Foundation
import Supervisor
import WSGI

/// The flags of one worker process, gunicorn's names. Shared by `gantry worker`
/// and `gantry serve` (which re-execs `gantry worker` with them).
struct WorkerOptions: ParsableArguments {
    @Argument(help: "The WSGI app: module:callable, or module:factory(args).")
    var app: String

    @Option(help: "Python interpreter (a virtualenv's bin/python works).")
    var python = "python3"

    @Option(help: "Change to this directory before loading the app.")
    var chdir: String?

    @Option(help: "Extra sys.path entries (comma-separated, repeatable).")
    var pythonpath: [String] = []

    @Option(name: [.short, .long], help: "Set an environment variable (KEY=VALUE, repeatable).")
    var env: [String] = []

    @Option(name: [.short, .long], help: "Listen on HOST:PORT or unix:PATH (repeatable).")
    var bind: [String] = []

    @Option(name: .customLong("listen-fd"), help: "Serve an inherited, bound and listening socket (repeatable).")
    var listenFD: [Int32] = []

    @Option(help: "Python threads running requests concurrently.")
    var threads = 1

    @Flag(name: .customLong("same-thread"), help: "Run every request on one Python thread, never on the event loop (slower; for thread-bound objects).")
    var sameThread = false

    @Option(name: [.short, .long], help: "Seconds a request may run before it gets 504 and the worker exits (0: off).")
    var timeout: Double = 30

    @Option(name: .customLong("graceful-timeout"), help: "Seconds running requests get after SIGQUIT.")
    var gracefulTimeout: Double = 30

    @Option(name: .customLong("keep-alive"), help: "Seconds an idle keep-alive connection stays open.")
    var keepAlive: Double = 2

    @Option(name: .customLong("max-requests"), help: "Recycle the worker after this many requests (0: never).")
    var maxRequests = 0

    @Option(name: .customLong("limit-request-body"), help: "Largest request body in bytes (0: unlimited).")
    var limitRequestBody: Int?

    @Option(name: .customLong("root-path"), help: "SCRIPT_NAME prefix the app is mounted at.")
    var rootPath: String?

    @Option(name: .customLong("forwarded-allow-ips"), help: "Peers trusted for X-Forwarded-*/X-Real-IP (IPs, CIDRs, *).")
    var forwardedAllowIPs: String?

    @Option(help: "Process umask (octal), e.g. for the mode of unix: sockets.")
    var umask: String?

    @Option(name: .customLong("access-logfile"), help: "Access log file ('-': stdout).")
    var accessLogfile: String?

    @Option(name: .customLong("error-logfile"), help: "Error log file ('-': stderr).")
    var errorLogfile = "-"

    @Option(name: .customLong("log-level"), help: "debug, info, warning, error or critical.")
    var logLevel = "info"

    @Option(name: .customLong("control-fd"), help: "Pipe to the supervisor (ready/heartbeat/recycle lines).")
    var controlFD: Int32?

    @Option(name: .customLong("parent-pid"), help: .hidden)
    var parentPID: Int32?

    /// The argv that gives the same options to a re-exec'd `gantry worker`.
    func arguments(replacingBinds binds: [String]? = nil, listenFDs: [Int32]? = nil, limitRequestBody limit: Int? = nil) -> [String] {
        var result = [app, "--python", python, "--threads", String(threads), "--timeout", String(timeout),
                      "--graceful-timeout", String(gracefulTimeout), "--keep-alive", String(keepAlive),
                      "--max-requests", String(maxRequests), "--error-logfile", errorLogfile, "--log-level", logLevel]
        if let chdir { result += ["--chdir", chdir] }
        for entry in pythonpath { result += ["--pythonpath", entry] }
        for entry in env { result += ["--env", entry] }
        for entry in binds ?? bind { result += ["--bind", entry] }
        for fd in listenFDs ?? listenFD { result += ["--listen-fd", String(fd)] }
        if let value = limit ?? limitRequestBody { result += ["--limit-request-body", String(value)] }
        if let rootPath { result += ["--root-path", rootPath] }
        if let forwardedAllowIPs { result += ["--forwarded-allow-ips", forwardedAllowIPs] }
        if let umask { result += ["--umask", umask] }
        if let accessLogfile { result += ["--access-logfile", accessLogfile] }
        if sameThread { result.append("--same-thread") }
        return result
    }
}

/// `gantry worker`: one app worker process (re-exec'd by a supervisor, or run alone).
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run one WSGI worker process.", shouldDisplay: false)

    @OptionGroup var options: WorkerOptions

    func run() throws {
        WorkerProcess.run(options, defaultLimitRequestBody: 0)
    }
}

/// Brings a worker up: environment, interpreter, app, server. Never returns.
enum WorkerProcess {
    static func run(_ options: WorkerOptions, defaultLimitRequestBody: Int) -> Never {
        // Before anything slow (the app's import): USR1's default action would end the process.
        signal(SIGUSR1, SIG_IGN)
        let errorSink: LogSink
        do { errorSink = try LogSink(path: options.errorLogfile, standard: STDERR_FILENO) } catch {
            fail("\(error)", code: .failure, log: nil)
        }
        guard let level = LogLevel(name: options.logLevel) else {
            fail("invalid --log-level \"\(options.logLevel)\" (debug, info, warning, error, critical)", code: .failure, log: nil)
        }
        let log = ErrorLog(sink: errorSink, level: level)

        var settings = WorkerSettings()
        do {
            settings = try makeSettings(options, defaultLimitRequestBody: defaultLimitRequestBody)
        } catch {
            fail("\(error)", code: .failure, log: log)
        }
        for entry in options.env {
            guard let equals = entry.firstIndex(of: "=") else { fail("invalid --env \"\(entry)\" (expected KEY=VALUE)", code: .failure, log: log) }
            setenv(String(entry[..<equals]), String(entry[entry.index(after: equals)...]), 1)
        }
        if let umaskText = options.umask {
            guard let mask = mode_t(umaskText.hasPrefix("0o") ? String(umaskText.dropFirst(2)) : umaskText, radix: 8) else {
                fail("invalid --umask \"\(umaskText)\" (octal, e.g. 007)", code: .failure, log: log)
            }
            Foundation.umask(mask)
        }
        if let directory = options.chdir {
            guard FileManager.default.changeCurrentDirectoryPath(directory) else {
                fail("cannot chdir to \(directory): \(String(cString: strerror(errno)))", code: .failure, log: log)
            }
        }
        let spec: AppSpec
        do { spec = try AppSpec(parsing: options.app) } catch {
            fail("\(error)", code: .callableNotFound, log: log)
        }
        var extraPath = [FileManager.default.currentDirectoryPath]
        for entry in options.pythonpath {
            extraPath += entry.split(separator: ",").map { String($0) }.filter { !$0.isEmpty }
        }

        let runtime: PythonRuntime
        let app: PyObjectPointer
        do {
            let info = try PythonInterpreterInfo.ask(options.python)
            runtime = try PythonRuntime(info: info, extraPath: extraPath)
            log.debug("python \(info.versionString) from \(runtime.api.libraryPath), prefix \(info.prefix)")
            app = try AppLoader.load(spec, in: runtime)
        } catch let error as CPythonError {
            fail("\(error)", code: exitCode(for: error), log: log)
        } catch {
            fail("\(error)", code: .failure, log: log)
        }
        var logFiles: [WorkerLogReopening.File] = []
        if options.errorLogfile != "-" { logFiles.append(.init(path: options.errorLogfile, descriptor: errorSink.descriptor)) }
        if let path = options.accessLogfile, path != "-", let sink = settings.accessLog {
            logFiles.append(.init(path: path, descriptor: sink.descriptor))
        }
        let reopening = WorkerLogReopening(files: logFiles, log: log)
        log.info("Booting worker with pid: \(getpid()) (app \(options.app), \(options.threads) thread(s))")
        let server = WSGIServer(settings: settings, log: log, runtime: runtime, app: app) { reason in
            switch reason {
            case .normal: terminate(.normal)
            case .requestTimeout: terminate(.requestTimeout)
            case .bindFailure(let message): fail(message, code: .bindFailure, log: log)
            case .failure(let message): fail(message, code: .failure, log: log)
            }
        }
        withExtendedLifetime(reopening) { server.run() }
    }

    static func makeSettings(_ options: WorkerOptions, defaultLimitRequestBody: Int) throws -> WorkerSettings {
        var settings = WorkerSettings()
        settings.binds = try options.bind.map { try WorkerBind(parsing: $0) }
        settings.listenDescriptors = options.listenFD
        if settings.binds.isEmpty && settings.listenDescriptors.isEmpty {
            settings.binds = [.tcp(host: "127.0.0.1", port: 8000)]
        }
        guard options.threads >= 1 else { throw WorkerConfigurationError.invalidValue(flag: "--threads", value: "\(options.threads)", reason: "must be at least 1") }
        settings.threads = options.threads
        if options.sameThread && options.threads > 1 {
            throw WorkerConfigurationError.invalidValue(flag: "--threads", value: "\(options.threads)",
                                                        reason: "--same-thread needs --threads 1 (with more threads, requests run on any of them)")
        }
        settings.sameThread = options.sameThread
        settings.timeout = max(0, options.timeout)
        settings.gracefulTimeout = max(0, options.gracefulTimeout)
        settings.keepAlive = max(0, options.keepAlive)
        settings.maxRequests = max(0, options.maxRequests)
        settings.limitRequestBody = max(0, options.limitRequestBody ?? defaultLimitRequestBody)
        let trustList = options.forwardedAllowIPs ?? ProcessInfo.processInfo.environment["FORWARDED_ALLOW_IPS"] ?? ForwardedTrust.gunicornDefault
        settings.environ = EnvironSettings(
            rootPath: options.rootPath ?? ProcessInfo.processInfo.environment["SCRIPT_NAME"] ?? "",
            trust: try ForwardedTrust(parsing: trustList))
        settings.controlDescriptor = options.controlFD
        settings.multiprocess = options.controlFD != nil
        settings.parentPID = options.parentPID
        if let path = options.accessLogfile { settings.accessLog = try LogSink(path: path, standard: STDOUT_FILENO) }
        return settings
    }

    static func exitCode(for error: CPythonError) -> WorkerExitCode {
        switch error {
        case .interpreterNotFound, .interpreterQueryFailed, .unsupportedVersion, .noSharedLibrary, .libraryNotLoadable, .missingSymbol:
            .noSharedLibpython
        case .initializationFailed: .failure
        case .importFailed: .importError
        case .invalidAppSpec, .callableNotFound: .callableNotFound
        case .notCallable: .notCallable
        }
    }

    /// One line on stderr (and the error log, when it is a file), then exit.
    static func fail(_ message: String, code: WorkerExitCode, log: ErrorLog?) -> Never {
        if let log {
            log.log(.critical, message)
            if log.sink.descriptor != STDERR_FILENO { FileHandle.standardError.write(Data("gantry worker: \(message)\n".utf8)) }
        } else {
            FileHandle.standardError.write(Data("gantry worker: \(message)\n".utf8))
        }
        terminate(code)
    }

    /// Exits without running static destructors under live Python threads.
    static func terminate(_ code: WorkerExitCode) -> Never {
        fflush(nil)
        _exit(code.rawValue)
    }
}
