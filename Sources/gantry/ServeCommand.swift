import ArgumentParser

/// `gantry serve`: the development server (one worker, reload on code change).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Development server: one worker, reload on change.")
}
