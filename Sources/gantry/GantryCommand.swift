#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import HTTPFront
import Logging
import NginxConfig
import ReverseProxy

/// `gantry` with nginx's own flags: `-c`, `-t`, `-T`, `-q`, `-p`, `-g`, `-e`, `-v`, `-V`, `-h`.
///
/// Messages read as nginx's (`gantry: [emerg] … in FILE:LINE`) and go to stderr, as nginx's do,
/// so scripts written for `nginx -t` work with `gantry -t`.
struct GantryCommand: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "gantry",
        abstract: "nginx-compatible front and supervised WSGI app servers from one config file.",
        usage: "gantry [-hvVtTq] [-s SIGNAL] [-c FILE] [-p PREFIX] [-e ERRORLOG] [-g DIRECTIVES]\n       gantry <subcommand> …",
        subcommands: [WSGICommand.self, ServeCommand.self, WorkerCommand.self, SpawnerCommand.self]
    )

    @Option(name: .customShort("c", allowingJoined: true),
            help: ArgumentHelp("Configuration file; a relative path is taken against -p, else the current directory.", valueName: "file"))
    var configFile: String = "/etc/gantry/gantry.conf"

    @Option(name: .customShort("p", allowingJoined: true),
            help: ArgumentHelp("Prefix path: relative paths in the configuration are taken against it (default: the configuration file's directory).", valueName: "prefix"))
    var prefix: String?

    @Option(name: .customShort("g", allowingJoined: true),
            help: ArgumentHelp("Main-context directives given on the command line, e.g. \"daemon off;\".", valueName: "directives"))
    var globalDirectives: String?

    @Option(name: .customShort("e", allowingJoined: true),
            help: ArgumentHelp("Error log file to use until the configuration's own error_log takes over; `stderr` for standard error.", valueName: "errorlog"))
    var errorLog: String?

    @Option(name: .customShort("s", allowingJoined: true),
            help: ArgumentHelp("Send a signal to the running gantry (its `pid` file): stop, quit, reopen, reload.", valueName: "signal"))
    var signal: String?

    @Flag(name: .customShort("t"), help: "Test the configuration and exit.")
    var test = false

    @Flag(name: .customShort("T"), help: "Test the configuration, dump every file read to standard output, and exit.")
    var testAndDump = false

    @Flag(name: .customShort("q"), help: "Suppress non-error messages while testing the configuration.")
    var quiet = false

    @Flag(name: .customShort("v"), help: "Show the version and exit.")
    var showVersion = false

    @Flag(name: .customShort("V"), help: "Show the version, what is built in and what is not, and exit.")
    var showBuild = false

    func run() throws {
        if showVersion || showBuild {
            Console.error("gantry version: gantry/\(Self.version)")
            if showBuild { Console.error(Self.buildDescription()) }
            if !test && !testAndDump { return }
        }
        let loader = ConfigurationLoader(configFile: configFile, prefix: prefix, globalDirectives: globalDirectives)
        if let signal { return try SignalCommand.send(signal, loader: loader) }
        let file = loader.resolvedConfigFile
        let configuration: Configuration
        do {
            configuration = try loader.load()
            for warning in configuration.warnings {
                log("warn", warning.description)
            }
            if test || testAndDump {
                try Self.compileModules(configuration)
            }
        } catch {
            log("emerg", error.description)
            if test || testAndDump {
                Console.error("gantry: configuration file \(file) test failed")
            }
            throw ExitCode(1)
        }
        if test || testAndDump {
            if !quiet {
                Console.error("gantry: the configuration file \(file) syntax is ok")
                Console.error("gantry: configuration file \(file) test is successful")
            }
            if testAndDump {
                for dumped in configuration.files {
                    Console.output("# configuration file \(dumped.path):\n\(dumped.text)\n")
                }
            }
            return
        }
        var running = configuration
        running.commandLineErrorLog = errorLog
        try StackRunner.run(running, loader: loader)
    }

    /// Compiles what the running stack compiles (the front's servers and locations, the proxy's
    /// upstreams) without binding or starting anything, so `-t` refuses what start-up would.
    static func compileModules(_ configuration: Configuration) throws(ConfigError) {
        let quiet = Logger(label: "gantry.test") { _ in SwiftLogNoOpLogHandler() }
        // App pools are checked as the stack reads them (and are upstreams for proxy_pass).
        let pools = try StackPools.plans(for: configuration, privateSocketDirectory: "/tmp", workerErrorLog: nil)
        let proxy = try ReverseProxyModule(configuration: configuration, additional: pools.map(\.upstream), logger: quiet)
        let front = try HTTPFrontServer(configuration: configuration, modules: [proxy], logger: quiet)
        front.shutdownGracefully(timeout: .zero)
    }

    /// An nginx-style start-up message: to stderr, and to the `-e` file when one is given.
    private func log(_ level: String, _ message: String) {
        Console.error("gantry: [\(level)] \(message)")
        if let errorLog, errorLog != "stderr" {
            Console.append("\(Console.timestamp()) [\(level)] \(getpid())#\(getpid()): \(message)\n", to: errorLog)
        }
    }

    /// `-V`: each module of the directive table, with what Gantry does with its directives.
    static func buildDescription() -> String {
        var modules: [String] = []
        var byModule: [String: [DirectiveSpec]] = [:]
        for spec in DirectiveTable.standard.specs {
            if byModule[spec.module] == nil { modules.append(spec.module) }
            byModule[spec.module, default: []].append(spec)
        }
        var builtIn: [String] = []
        var notBuiltIn: [String] = []
        for module in modules {
            let specs = byModule[module] ?? []
            func names(_ label: String) -> String? {
                let matching = specs.filter { $0.status.label == label }.map(\.name)
                return matching.isEmpty ? nil : "\(label): " + matching.joined(separator: " ")
            }
            if specs.allSatisfy({ $0.status == .unsupported }) {
                notBuiltIn.append(module)
            } else {
                let parts = ["supported", "partial", "accepted", "unsupported"].compactMap(names)
                builtIn.append("  \(module) — " + parts.joined(separator: "; "))
            }
        }
        return """
        built in (nginx modules, by directive; see nginx-compat/directives.md):
        \(builtIn.joined(separator: "\n"))
        not built in: \(notBuiltIn.joined(separator: " "))
        """
    }
}

/// Writes to the standard streams without Foundation and without shared mutable state.
enum Console {
    static func error(_ line: String) { write(fd: 2, line + "\n") }
    static func output(_ text: String) { write(fd: 1, text) }

    static func append(_ text: String, to path: String) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            error("gantry: [alert] could not open error log file: open() \"\(path)\" failed (\(errno): \(String(cString: strerror(errno))))")
            return
        }
        defer { close(fd) }
        write(fd: fd, text)
    }

    private static func write(fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { raw in
                #if canImport(Glibc)
                Glibc.write(fd, raw.baseAddress, raw.count)
                #else
                Darwin.write(fd, raw.baseAddress, raw.count)
                #endif
            }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }

    /// nginx's error-log time: `2026/11/21 15:00:00`.
    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)/\(two(parts.tm_mon + 1))/\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
    }
}
