import ArgumentParser

/// `gantry worker`: one app worker process (re-exec'd by a supervisor, or run alone).
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Run one WSGI worker process.", shouldDisplay: false)
}
