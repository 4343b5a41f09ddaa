import NginxConfig

/// The rewrite-phase directives of one level (server or location) in config order: `return`,
/// `if (…) { return …; }`, `rewrite` and `break`. nginx runs them top to bottom; the first
/// `return` (or redirecting `rewrite`) reached answers the request. Nil when the level has none
/// (the common case costs nothing).
struct RewriteProgram: Sendable {
    enum Condition: Sendable {
        case variable(VariableTemplate)
        case equals(VariableTemplate, VariableTemplate, negated: Bool)
        case matches(VariableTemplate, ConfigRegex, negated: Bool)
    }

    /// `rewrite`'s last parameter.
    enum RewriteFlag: String, Sendable {
        case none = "", last, `break`, redirect, permanent
    }

    enum Step: Sendable {
        case answer(ReturnAction)
        /// An `if` block; nil when it holds no `return` (nothing to do when it matches, but a
        /// regex still sets the captures, as in nginx).
        case when(Condition, ReturnAction?)
        /// `rewrite REGEX REPLACEMENT [FLAG]`, matched against `$uri`.
        case rewrite(ConfigRegex, VariableTemplate, RewriteFlag)
        /// `break;`: the level's rewrite directives stop here.
        case stop
    }

    /// What the level's rewrite directives decided.
    enum Outcome: Equatable {
        /// Go on: to the location search (server level) or this location's content. `searchAgain`:
        /// the URI changed by a `rewrite` without `break`, so the location is looked up again.
        case proceed(searchAgain: Bool)
        case answer(ReturnAction)
        /// An external redirect (`rewrite … redirect|permanent`, or to `http(s)://…`).
        case redirect(status: Int, url: String)

        static func == (a: Outcome, b: Outcome) -> Bool {
            switch (a, b) {
            case (.proceed(let x), .proceed(let y)): x == y
            case (.answer(let x), .answer(let y)): x.status == y.status && x.value == y.value
            case (.redirect(let s1, let u1), .redirect(let s2, let u2)): s1 == s2 && u1 == u2
            default: false
            }
        }
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
            case "rewrite":
                let values = directive.values
                let regex: ConfigRegex
                do { regex = try ConfigRegex(values[0], caseInsensitive: false) } catch {
                    throw ConfigError("pcre2_compile() failed: \(error.description)", at: directive.location)
                }
                var flag = RewriteFlag.none
                if values.count == 3 {
                    guard let known = RewriteFlag(rawValue: values[2]), known != .none else {
                        throw ConfigError("invalid parameter \"\(values[2])\"", at: directive.location)
                    }
                    flag = known
                }
                let replacement = try Self.template(values[1], directive, namedCaptures.union(regex.captureNames))
                steps.append(.rewrite(regex, replacement, flag))
            case "break":
                steps.append(.stop)
            default:
                continue
            }
        }
        guard !steps.isEmpty else { return nil }
        self.steps = steps
    }

    /// Runs the level's directives: the first `return` or redirecting `rewrite` reached answers;
    /// an internal `rewrite` changes `variables.uri`/`args` (nginx: the arguments of the
    /// replacement come first, the request's are appended unless it ends in `?`). A matching
    /// regex leaves its captures in `variables` (`$1`, named groups) for what follows.
    func run(_ variables: inout RequestVariables) -> Outcome {
        var changed = false
        for step in steps {
            switch step {
            case .answer(let action):
                return .answer(action)
            case .when(let condition, let action):
                if Self.holds(condition, &variables), let action { return .answer(action) }
            case .stop:
                return .proceed(searchAgain: changed)
            case .rewrite(let regex, let replacement, let flag):
                guard let match = regex.firstMatch(in: variables.uri) else { continue }
                variables.captures = match.captures
                variables.namedCaptures.merge(match.named) { $1 }
                let target = replacement.render(variables)
                let (path, args) = Self.split(target, requestArgs: variables.args)
                if flag == .redirect || flag == .permanent || target.hasPrefix("http://") || target.hasPrefix("https://") {
                    return .redirect(status: flag == .permanent ? 301 : 302, url: args.isEmpty ? path : path + "?" + args)
                }
                variables.uri = path
                variables.args = args
                changed = true
                switch flag {
                case .last: return .proceed(searchAgain: true)
                case .break: return .proceed(searchAgain: false)
                default: continue
                }
            }
        }
        return .proceed(searchAgain: changed)
    }

    /// A replacement's path and arguments, with the request's arguments appended unless the
    /// replacement ends in `?`.
    static func split(_ target: String, requestArgs: String) -> (path: String, args: String) {
        guard let question = target.firstIndex(of: "?") else { return (target, requestArgs) }
        let path = String(target[..<question])
        var own = String(target[target.index(after: question)...])
        if target.hasSuffix("?") {
            if !own.isEmpty { own.removeLast() }
            return (path, own)
        }
        if requestArgs.isEmpty { return (path, own) }
        return (path, own.isEmpty ? requestArgs : own + "&" + requestArgs)
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
