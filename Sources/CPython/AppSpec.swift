/// `module:callable` or `module:factory(ARGS)`, as gunicorn takes it.
///
/// Swift checks the shape (so a typo fails before Python starts); the factory's
/// arguments are Python literals evaluated by `ast.literal_eval`, as gunicorn does.
public struct AppSpec: Equatable, Sendable {
    public var module: String
    /// The attribute expression after the colon, e.g. `app` or `create_app("prod")`.
    public var expression: String
    public var attribute: String
    public var isFactoryCall: Bool

    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        module = String(parts[0]).trimmingWhitespace
        expression = parts.count > 1 ? String(parts[1]).trimmingWhitespace : "application"
        guard !module.isEmpty else { throw CPythonError.invalidAppSpec("no module in app \"\(text)\" (expected module:callable)") }
        if module.hasSuffix(".py") {
            throw CPythonError.invalidAppSpec("Failed to find application, did you mean '\(module.dropLast(3)):\(expression)'?")
        }
        guard module.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({ Self.isIdentifier($0) }) else {
            throw CPythonError.invalidAppSpec("invalid module name \"\(module)\" in app \"\(text)\"")
        }
        if let open = expression.firstIndex(of: "(") {
            attribute = String(expression[..<open]).trimmingWhitespace
            isFactoryCall = true
            guard expression.hasSuffix(")") else {
                throw CPythonError.invalidAppSpec("Failed to parse '\(expression)' as an attribute name or function call.")
            }
            guard Self.isIdentifier(Substring(attribute)) else {
                throw CPythonError.invalidAppSpec("Function reference must be a simple name: '\(expression)'")
            }
        } else {
            attribute = expression
            isFactoryCall = false
            guard Self.isIdentifier(Substring(attribute)) else {
                throw CPythonError.invalidAppSpec("Failed to parse '\(expression)' as an attribute name or function call.")
            }
        }
    }

    static func isIdentifier(_ text: Substring) -> Bool {
        guard let first = text.unicodeScalars.first, first == "_" || first.properties.isXIDStart else { return false }
        return text.unicodeScalars.dropFirst().allSatisfy { $0 == "_" || $0.properties.isXIDContinue }
    }
}

extension String {
    var trimmingWhitespace: String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
