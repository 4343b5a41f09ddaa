/// File extension → MIME type, from `types { }` blocks with nginx's rules: the nearest level
/// that has `types` wins outright (no merging with outer levels), a later extension in the same
/// level replaces an earlier one, extensions match case-insensitively.
public struct MimeTypeMap: Sendable, Hashable {
    public private(set) var byExtension: [String: String]

    /// nginx's built-in types, used where no level has a `types` block (`ngx_http_core_default_types`).
    public static let nginxDefault = MimeTypeMap(byExtension: ["html": "text/html", "gif": "image/gif", "jpg": "image/jpeg"])

    public init(byExtension: [String: String]) {
        self.byExtension = byExtension
    }

    /// The map from `types` block directives (each entry: `type ext ext …;`).
    public init(typesBlocks: [Directive]) {
        var map: [String: String] = [:]
        for block in typesBlocks {
            for entry in block.block ?? [] {
                for ext in entry.values {
                    map[ext.lowercased()] = entry.name
                }
            }
        }
        self.byExtension = map
    }

    /// The map in effect at `scope` (a location, server or http level).
    public init(scope: ConfigScope) {
        let blocks = scope.effectiveList("types")
        self = blocks.isEmpty ? .nginxDefault : MimeTypeMap(typesBlocks: blocks)
    }

    /// The type for an extension (without the dot), or nil.
    public func type(forExtension ext: some StringProtocol) -> String? {
        byExtension[ext.lowercased()]
    }

    /// The type for a path's extension (what follows the last `.` of the last segment), or nil.
    public func type(forPath path: some StringProtocol) -> String? {
        let name = Substring(path).split(separator: "/", omittingEmptySubsequences: false).last ?? Substring(path)
        guard let dot = name.lastIndex(of: "."), dot != name.index(before: name.endIndex) else { return nil }
        return type(forExtension: name[name.index(after: dot)...])
    }
}

extension ConfigScope {
    /// `default_type` in effect (nginx's default is `text/plain`).
    public var defaultType: String {
        effective("default_type")?.values.first ?? "text/plain"
    }
}
