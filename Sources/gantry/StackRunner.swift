import ArgumentParser
import Dispatch
import Foundation
import HTTPFront
import Logging
import NginxConfig
import ReverseProxy

/// Runs the configured stack (front, proxy, app pools) until told to stop.
/// Owned by the front; the app pools join it with the stack issue.
enum StackRunner {
    /// Content modules offered every location (the reverse proxy registers here).
    static func contentModules(for configuration: Configuration, logger: Logger) throws(ConfigError) -> [any ContentModule] {
        let proxy = try ReverseProxyModule(configuration: configuration, logger: logger)
        proxy.startHealthChecks()
        return [proxy]
    }

    /// Starts the front and blocks until SIGTERM, SIGINT or SIGQUIT, then stops
    /// gracefully: no new connections, in-flight responses finish.
    static func run(_ configuration: Configuration) throws {
        let logger = makeErrorLogger(configuration)
        let server: HTTPFrontServer
        do {
            server = try HTTPFrontServer(configuration: configuration, modules: contentModules(for: configuration, logger: logger), logger: logger)
        } catch {
            if errorLogFile != nil { logger.critical("\(error)") }
            Console.error("gantry: [emerg] \(error)")
            errorLogFile?.close()
            throw ExitCode(1)
        }
        do {
            try server.start()
        } catch {
            let message = "bind() failed: \(error)"
            if errorLogFile != nil { logger.critical("\(message)") }
            Console.error("gantry: [emerg] \(message)")
            server.shutdownGracefully(timeout: .zero)
            errorLogFile?.close()
            throw ExitCode(1)
        }
        waitForStopSignal()
        logger.notice("signal received, exiting gracefully")
        server.shutdownGracefully()
        logger.notice("exit")
        errorLogFile?.close()
    }

    nonisolated(unsafe) private static var errorLogFile: AccessLogFile?

    /// `error_log FILE [LEVEL]` of the main context (or `-e`), else `logs/error.log`
    /// under the prefix; `stderr` writes to standard error.
    static func makeErrorLogger(_ configuration: Configuration) -> Logger {
        var path = configuration.prefix + "logs/error.log"
        var level = Logger.Level.error
        if let directive = configuration.main.own("error_log") ?? configuration.http?.scope.own("error_log") {
            path = directive.values[0]
            if directive.values.count > 1, let parsed = ErrorLogHandler.level(nginxName: directive.values[1]) { level = parsed }
        } else if let commandLine = configuration.commandLineErrorLog {
            path = commandLine
        }
        if path != "stderr" && !path.hasPrefix("/") { path = configuration.prefix + path }
        let chosenLevel = level
        if path == "stderr" || path == "/dev/stderr" {
            return Logger(label: "gantry") { _ in
                var handler = StreamLogHandler.standardError(label: "gantry")
                handler.logLevel = chosenLevel
                return handler
            }
        }
        let file = AccessLogFile(path: path)
        if let problem = file.open() {
            Console.error("gantry: [alert] \(problem)")
            return Logger(label: "gantry") { _ in
                var handler = StreamLogHandler.standardError(label: "gantry")
                handler.logLevel = chosenLevel
                return handler
            }
        }
        errorLogFile = file
        return Logger(label: "gantry") { _ in ErrorLogHandler(file: file, level: chosenLevel) }
    }

    private static func waitForStopSignal() {
        let stop = DispatchSemaphore(value: 0)
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT, SIGQUIT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            sources.append(source)
        }
        stop.wait()
        for source in sources { source.cancel() }
    }
}
