import ArgumentParser
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

    /// Starts the front and every `app_pool`, then serves until a stop signal (see `Stack`).
    static func run(_ configuration: Configuration, loader: ConfigurationLoader) throws {
        try Stack(loader: loader, configuration: configuration).run()
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

    /// `USR1` / `-s reopen`: the error log file again (logrotate moved it).
    static func reopenErrorLog() {
        if let problem = errorLogFile?.open() { Console.error("gantry: [alert] \(problem)") }
    }

    static func closeErrorLog() { errorLogFile?.close() }
}
