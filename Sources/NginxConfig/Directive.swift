/// One argument of a directive as written, after quote and escape processing.
public struct ConfigArgument: Sendable, Hashable, CustomStringConvertible {
    /// The text with quotes removed and escapes applied.
    public var value: String
    /// Whether it was written in quotes; `""` is an empty argument, which a bare word can never be.
    public var quoted: Bool

    public init(_ value: String, quoted: Bool = false) {
        self.value = value
        self.quoted = quoted
    }

    public var description: String { value }
}

/// A directive with its arguments and, for block directives, its children.
///
/// `include` is already expanded by the parser: a block holds the directives
/// of included files in place, each keeping its own file:line.
public struct Directive: Sendable, Hashable {
    public var name: String
    public var arguments: [ConfigArgument]
    public var location: SourceLocation
    /// `nil` for a simple directive ending in `;`, the children for a `{ }` block.
    public var block: [Directive]?
    /// The line of a block's closing `}` (nginx reports some block errors there).
    public var blockEndLine: Int?

    public init(name: String, arguments: [ConfigArgument] = [], location: SourceLocation, block: [Directive]? = nil, blockEndLine: Int? = nil) {
        self.name = name
        self.arguments = arguments
        self.location = location
        self.block = block
        self.blockEndLine = blockEndLine
    }

    /// Where the block closes, for errors nginx reports at the `}`.
    public var blockEnd: SourceLocation {
        SourceLocation(file: location.file, line: blockEndLine ?? location.line)
    }

    /// The argument values, for directives whose quoting does not matter.
    public var values: [String] { arguments.map(\.value) }
}

extension Array where Element == Directive {
    /// The children named `name`, in config order.
    public func named(_ name: String) -> [Directive] { filter { $0.name == name } }
}
