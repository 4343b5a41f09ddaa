import HTTPFront

/// The values only the proxy knows, for `$proxy_host` and friends.
public struct ProxyVariables: Sendable {
    public var proxyHost: String
    public var proxyPort: String

    public init(proxyHost: String, proxyPort: String) {
        self.proxyHost = proxyHost
        self.proxyPort = proxyPort
    }
}

/// A `proxy_set_header` value: the front's variables plus the proxy's own
/// (`$proxy_host`, `$proxy_port`, `$proxy_add_x_forwarded_for`).
public struct ProxyTemplate: Sendable, Hashable, CustomStringConvertible {
    enum ProxyVariable: String, Sendable, Hashable {
        case proxyHost = "proxy_host"
        case proxyPort = "proxy_port"
        case addXForwardedFor = "proxy_add_x_forwarded_for"
    }

    enum Segment: Sendable, Hashable {
        case front(VariableTemplate)
        case proxy(ProxyVariable)
    }

    let segments: [Segment]
    public let source: String

    public var description: String { source }

    public init(_ source: String, namedCaptures: Set<String> = []) throws(VariableTemplate.CompileError) {
        self.source = source
        var segments: [Segment] = []
        var pending = ""
        let scalars = Array(source.unicodeScalars)
        var i = 0
        func isNameChar(_ c: Unicode.Scalar) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_"
        }
        func flush() throws(VariableTemplate.CompileError) {
            if !pending.isEmpty {
                segments.append(.front(try VariableTemplate(pending, namedCaptures: namedCaptures)))
                pending = ""
            }
        }
        while i < scalars.count {
            guard scalars[i] == "$" else {
                pending.unicodeScalars.append(scalars[i])
                i += 1
                continue
            }
            // Find the name to see whether it is one of ours.
            var j = i + 1
            var name = ""
            var braced = false
            if j < scalars.count, scalars[j] == "{" {
                braced = true
                j += 1
                while j < scalars.count, scalars[j] != "}" { name.unicodeScalars.append(scalars[j]); j += 1 }
                j += 1
            } else {
                while j < scalars.count, isNameChar(scalars[j]) { name.unicodeScalars.append(scalars[j]); j += 1 }
            }
            if let ours = ProxyVariable(rawValue: name), !braced || j <= scalars.count {
                try flush()
                segments.append(.proxy(ours))
                i = j
            } else {
                pending.unicodeScalars.append(scalars[i])
                i += 1
            }
        }
        try flush()
        self.segments = segments
    }

    /// The value when it has no variables.
    public var constantValue: String? {
        if segments.isEmpty { return "" }
        if segments.count == 1, case .front(let template) = segments[0] { return template.constantValue }
        return nil
    }

    public func render(_ variables: RequestVariables, proxy: ProxyVariables) -> String {
        if segments.count == 1, case .front(let template) = segments[0] { return template.render(variables) }
        var out = ""
        for segment in segments {
            switch segment {
            case .front(let template): out += template.render(variables)
            case .proxy(.proxyHost): out += proxy.proxyHost
            case .proxy(.proxyPort): out += proxy.proxyPort
            case .proxy(.addXForwardedFor):
                let existing = variables.headers["x-forwarded-for"]
                out += existing.isEmpty ? variables.remoteAddress
                    : existing.joined(separator: ", ") + ", " + variables.remoteAddress
            }
        }
        return out
    }
}
