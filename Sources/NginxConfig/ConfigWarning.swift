/// A non-fatal remark about the configuration, printed as nginx prints `[warn]` lines.
public struct ConfigWarning: Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var location: SourceLocation?

    public init(_ message: String, at location: SourceLocation?) {
        self.message = message
        self.location = location
    }

    public var description: String {
        guard let location else { return message }
        return "\(message) in \(location)"
    }
}
