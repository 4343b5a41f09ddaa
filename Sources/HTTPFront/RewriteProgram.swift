import NginxConfig

/// The rewrite-phase directives of one level (server or location) in config order: `return`s
/// and `if (…) { return …; }` blocks. nginx runs them top to bottom; the first `return` reached
/// answers the request. Nil when the level has none (the common case costs nothing).
struct RewriteProgram: Sendable {
    enum Condition: Sendable {
        case variable(VariableTemplate)
        case equals(VariableTemplate, VariableTemplate, negated: Bool)
        case matches(VariableTemplate, ConfigRegex, negated: Bool)
    }

    enum Step: Sendable {
        case answer(ReturnAction)
        /// An `if` block; nil when it holds no `return` (nothing to do when it matches, but a
        /// regex still sets the captures, as in nginx).
        case when(Condition, ReturnAction?)
    }

    let steps: [Step]

    /// Nil when `directives` (a level's own, in order) hold no `return` and no `if`.
    init?(_ directives: [Directive], namedCaptures: Set<String>) throws(ConfigError) {
        var steps: [Step] = []
        for directive in directives {
            switch directive.name {
            case "return":
                steps.append(.answer(try Self.returnAction(directive, namedCaptures: namedCaptures)))
            case "if":
                let condition = try IfCondition.parse(directive)
                var captures = namedCaptures
                let compiled: Condition
                switch condition {
                case .variable(let name):
                    compiled = .variable(try Self.template(name, directive, namedCaptures))
                case .equals(let left, let right, let negated):
                    compiled = .equals(try Self.template(left, directive, namedCaptures), try Self.template(right, directive, namedCaptures), negated: negated)
                case .matches(let subject, let pattern, let caseInsensitive, let negated):
                    let regex: ConfigRegex
                    do { regex = try ConfigRegex(pattern, caseInsensitive: caseInsensitive) } catch {
                        throw ConfigError("pcre2_compile() failed: \(error.description)", at: directive.location)
                    }
                    captures.formUnion(regex.captureNames)
                    compiled = .matches(try Self.template(subject, directive, namedCaptures), regex, negated: negated)
                }
                let answer = try directive.block?.first { $0.name == "return" }.map { (inner: Directive) throws(ConfigError) in
                    try Self.returnAction(inner, namedCaptures: captures)
                }
                steps.append(.when(compiled, answer))
            default:
                continue
            }
        }
        guard !steps.isEmpty else { return nil }
        self.steps = steps
    }

    /// The `return` that answers, if one is reached; a matching regex leaves its captures in
    /// `variables` (`$1`, named groups) for what follows.
    func run(_ variables: inout RequestVariables) -> ReturnAction? {
        for step in steps {
            switch step {
            case .answer(let action):
                return action
            case .when(let condition, let action):
                if Self.holds(condition, &variables), let action { return action }
            }
        }
        return nil
    }

    static func holds(_ condition: Condition, _ variables: inout RequestVariables) -> Bool {
        switch condition {
        case .variable(let value):
            let text = value.render(variables)
            return !text.isEmpty && text != "0"
        case .equals(let left, let right, let negated):
            return (left.render(variables) == right.render(variables)) != negated
        case .matches(let subject, let regex, let negated):
            let match = regex.firstMatch(in: subject.render(variables))
            if let match, !negated {
                variables.captures = match.captures
                variables.namedCaptures.merge(match.named) { $1 }
            }
            return (match != nil) != negated
        }
    }

    private static func template(_ text: String, _ directive: Directive, _ namedCaptures: Set<String>) throws(ConfigError) -> VariableTemplate {
        do { return try VariableTemplate(text, namedCaptures: namedCaptures) } catch {
            throw ConfigError(error.message, at: directive.location)
        }
    }

    private static func returnAction(_ directive: Directive, namedCaptures: Set<String>) throws(ConfigError) -> ReturnAction {
        try LocationSettings.parseReturn(directive) { (directive: Directive, index: Int) throws(ConfigError) -> VariableTemplate in
            try template(directive.values[index], directive, namedCaptures)
        }
    }
}
