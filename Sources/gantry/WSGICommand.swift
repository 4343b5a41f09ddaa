import ArgumentParser

/// `gantry wsgi`: the gunicorn-style app server (see issue: WSGI app server).
struct WSGICommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "wsgi", abstract: "Run a WSGI app, gunicorn-style.")
}
