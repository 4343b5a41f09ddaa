import ArgumentParser
import NginxConfig

/// `gantry` with nginx's flags (`-c`, `-t`, `-T`, `-p`, `-g`, `-e`, `-v`, `-V`).
struct GantryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gantry",
        abstract: "nginx-compatible front and supervised WSGI app servers from one config file.",
        subcommands: [WSGICommand.self, ServeCommand.self, WorkerCommand.self]
    )

    @Option(name: .customShort("c"), help: "Configuration file.")
    var configFile: String = "/etc/gantry/gantry.conf"

    @Flag(name: .customShort("t"), help: "Test the configuration and exit.")
    var test = false

    func run() throws {
        do {
            _ = try ConfigurationLoader(configFile: configFile).load()
            print("gantry: the configuration file \(configFile) syntax is ok")
            print("gantry: configuration file \(configFile) test is successful")
        } catch {
            print("gantry: [emerg] \(error)")
            throw ExitCode(1)
        }
    }
}
