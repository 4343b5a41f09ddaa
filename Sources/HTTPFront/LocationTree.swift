import NginxConfig

/// A regular expression from the config (`location ~`, `server_name ~`), with
/// nginx's unanchored search and numbered/named captures.
public struct ConfigRegex: @unchecked Sendable {
    // Regex is immutable after compilation; matching does not mutate it.
    private let regex: Regex<AnyRegexOutput>
    public let source: String
    public let caseInsensitive: Bool
    /// Names of `(?<name>…)` groups, usable as `$name`.
    public let captureNames: Set<String>

    public struct CompileError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public init(_ source: String, caseInsensitive: Bool) throws(CompileError) {
        do {
            var regex = try Regex(source)
            if caseInsensitive { regex = regex.ignoresCase() }
            self.regex = regex
        } catch {
            throw CompileError(description: "\"\(source)\": \(error)")
        }
        self.source = source
        self.caseInsensitive = caseInsensitive
        var names = Set<String>()
        // Named groups: (?<name>…) and (?P<name>…).
        var rest = Substring(source)
        while let range = rest.range(of: "(?") {
            var after = rest[range.upperBound...]
            if after.hasPrefix("P") { after = after.dropFirst() }
            if after.hasPrefix("<"), let close = after.firstIndex(of: ">") {
                let name = after[after.index(after: after.startIndex)..<close]
                if !name.isEmpty, !name.hasPrefix("="), !name.hasPrefix("!") { names.insert(String(name)) }
            }
            rest = rest[range.upperBound...]
        }
        self.captureNames = names
    }

    /// Captures of the first match: `[0]` is the whole match, then `$1`… (absent groups are "").
    public struct Match: Sendable, Equatable {
        public var captures: [String]
        public var named: [String: String]
    }

    public func firstMatch(in text: String) -> Match? {
        guard let match = try? regex.firstMatch(in: text) else { return nil }
        var captures: [String] = []
        var named: [String: String] = [:]
        for element in match.output {
            let value = element.substring.map(String.init) ?? ""
            captures.append(value)
            if let name = element.name { named[name] = value }
        }
        return Match(captures: captures, named: named)
    }
}

/// nginx's location search (`ngx_http_core_find_location`) over one level of
/// locations and their nested ones: `=` exact stops at once; otherwise the
/// longest prefix is remembered and its nested locations searched; then,
/// unless that prefix is `^~`, regexes are tried in config order and the first
/// match wins (its nested locations searched too); else the longest prefix.
public struct LocationTree<Payload: Sendable>: Sendable {
    public struct Node: Sendable {
        public var match: LocationMatch
        public var regex: ConfigRegex?
        public var payload: Payload
        public var nested: LocationTree<Payload>
    }

    public var exact: [String: Node] = [:]
    /// Prefix locations sorted longest first.
    public var prefixes: [(prefix: String, node: Node)] = [] {
        didSet {
            prefixKeys = prefixes.map(\.prefix)
            prefixNodes = prefixes.map(\.node)
        }
    }
    /// `prefixes` as two arrays, read per request: reading a tuple out of the array copies it whole.
    private var prefixKeys: [String] = []
    private var prefixNodes: [Node] = []
    public var regexes: [Node] = []
    public var named: [String: Node] = [:]

    public init() {}

    public mutating func add(_ node: Node) {
        switch node.match {
        case .exact(let uri): exact[uri] = node
        case .prefix(let prefix, _):
            prefixes.append((prefix, node))
            prefixes.sort { $0.prefix.utf8.count > $1.prefix.utf8.count }
        case .regex: regexes.append(node)
        case .named(let name): named[name] = node
        }
    }

    public struct Found: Sendable {
        public var payload: Payload
        public var captures: ConfigRegex.Match?
    }

    public func find(_ uri: String) -> Found? {
        guard let result = search(uri) else { return nil }
        return result.found
    }

    /// Nested search; `final` when an exact or regex location decided (outer regexes are then skipped).
    /// Walks the nodes in place (by index): copying a node would copy its payload and nested tree per request.
    private func search(_ uri: String) -> (found: Found, final: Bool)? {
        // Hashing the URI costs more than the rest of a one-prefix search: skipped when there is no `=`.
        if !exact.isEmpty, let node = exact[uri] { return (Found(payload: node.payload, captures: nil), true) }
        var bestIndex: Int?
        var noRegex = false
        for index in prefixKeys.indices where uri.utf8.starts(with: prefixKeys[index].utf8) {
            bestIndex = index
            break
        }
        var best: Found?
        if let index = bestIndex {
            if case .prefix(_, let stops) = prefixNodes[index].match { noRegex = stops }
            if let inner = prefixNodes[index].nested.searchIfAny(uri) {
                if inner.final { return inner }
                best = inner.found
            } else {
                best = Found(payload: prefixNodes[index].payload, captures: nil)
            }
        }
        if !noRegex {
            for node in regexes {
                if let match = node.regex?.firstMatch(in: uri) {
                    if let inner = node.nested.find(uri) {
                        var found = inner
                        if found.captures == nil { found.captures = match }
                        return (found, true)
                    }
                    return (Found(payload: node.payload, captures: match), true)
                }
            }
        }
        guard let best else { return nil }
        return (best, false)
    }

    /// `search`, skipped outright for a node without nested locations (the usual case).
    private func searchIfAny(_ uri: String) -> (found: Found, final: Bool)? {
        if exact.isEmpty, prefixes.isEmpty, regexes.isEmpty { return nil }
        return search(uri)
    }

    /// `@name` locations are looked up among the server's top-level locations.
    public func namedLocation(_ name: String) -> Payload? { named[name]?.payload }
}
