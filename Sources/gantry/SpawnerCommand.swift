import ArgumentParser
import Supervisor

/// `gantry spawner`: the helper that keeps root to start workers as their pools' accounts
/// (started by the stack before it drops privileges; see `PrivilegedSpawner`). Not for users.
struct SpawnerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spawner", abstract: "Start app workers as other users for the stack (internal).", shouldDisplay: false)

    @Option(help: "An account workers may run as: UID:GID:GROUP,GROUP…")
    var allow: [String] = []

    func run() throws {
        var allowed = Set<WorkerCredentials>()
        for entry in allow {
            guard let credentials = WorkerCredentials(encoded: entry) else { throw ValidationError("invalid --allow \"\(entry)\"") }
            allowed.insert(credentials)
        }
        SpawnerServer.run(socket: PrivilegedSpawner.requestFD, policy: SpawnerPolicy(allowed: allowed))
    }
}
