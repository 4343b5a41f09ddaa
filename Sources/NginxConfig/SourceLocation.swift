/// Where a token came from, for nginx-style `in FILE:LINE` messages.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// nginx names `-g` directives `command line`, with no line number.
    public static let commandLine = SourceLocation(file: "command line", line: 0)

    public var description: String { line == 0 ? file : "\(file):\(line)" }
}
