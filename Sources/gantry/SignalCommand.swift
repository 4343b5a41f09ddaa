#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import NginxConfig

/// `gantry -s stop|quit|reopen|reload`, as `nginx -s`: reads the configuration (with `-c`,
/// `-p`, `-g`) to find the `pid` file, then signals the process named in it.
enum SignalCommand {
    /// nginx's default pid path is a compile-time one; Gantry's is under the prefix.
    static let defaultPidPath = "logs/gantry.pid"

    static let signals: [String: Int32] = ["stop": SIGTERM, "quit": SIGQUIT, "reopen": SIGUSR1, "reload": SIGHUP]

    static func send(_ name: String, loader: ConfigurationLoader) throws {
        guard let number = signals[name] else {
            Console.error("gantry: invalid option: \"-s \(name)\" (stop, quit, reopen or reload)")
            throw ExitCode(1)
        }
        let configuration: Configuration
        do {
            configuration = try loader.load()
        } catch {
            Console.error("gantry: [emerg] \(error.description)")
            throw ExitCode(1)
        }
        let directive = configuration.main.effective("pid")
        let path = configuration.fullPath(directive?.values[0] ?? defaultPidPath)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            Console.error("gantry: [error] open() \"\(path)\" failed (\(errno): \(String(cString: strerror(errno))))")
            throw ExitCode(1)
        }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = read(fd, &buffer, buffer.count)
        close(fd)
        let text = String(decoding: buffer[0..<max(0, count)], as: UTF8.self).split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
        guard let pid = Int32(text), pid > 0 else {
            Console.error("gantry: [error] invalid PID number \"\(text)\" in \"\(path)\"")
            throw ExitCode(1)
        }
        guard kill(pid, number) == 0 else {
            Console.error("gantry: [alert] kill(\(pid), \(number)) failed (\(errno): \(String(cString: strerror(errno))))")
            throw ExitCode(1)
        }
    }
}
