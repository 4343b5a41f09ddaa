/// A configuration error, worded as nginx words it: `MESSAGE in FILE:LINE`.
///
/// `message` carries nginx's own text (`unknown directive "foo"`), so that
/// `gantry -t` reads like `nginx -t` to people who already know nginx.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
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
