import NginxConfig

/// Runs the configured stack (front, proxy, app pools) until told to stop.
/// Owned by the front; the app pools join it with the stack issue.
enum StackRunner {
    static func run(_ configuration: Configuration) throws {
        print("gantry: serving is not implemented yet")
    }
}
