/// The directive matrix in `nginx-compat/directives.md` is generated from the table, so the
/// documentation and the code cannot disagree (a unit test compares them).
extension DirectiveTable {
    public static let markdownBegin = "<!-- BEGIN DIRECTIVE TABLE (generated from Sources/NginxConfig/DirectiveTable+*.swift) -->"
    public static let markdownEnd = "<!-- END DIRECTIVE TABLE -->"

    /// One markdown table per module: directive, contexts, nginx arity, Gantry status, notes.
    public func markdown() -> String {
        var modules: [String] = []
        var byModule: [String: [DirectiveSpec]] = [:]
        for spec in specs {
            if byModule[spec.module] == nil { modules.append(spec.module) }
            byModule[spec.module, default: []].append(spec)
        }
        var out = ""
        for module in modules {
            let title = module.hasPrefix("gantry_") ? "\(module) (Gantry's own)" : "ngx_\(module)_module"
            out += "\n### \(title)\n\n"
            out += "| directive | contexts | arguments | status | notes |\n"
            out += "|---|---|---|---|---|\n"
            for spec in byModule[module] ?? [] {
                out += "| \(Self.markdownRow(spec)) |\n"
            }
        }
        return out
    }

    /// The cells of one row, also used by the test that reads the document back.
    public static func markdownRow(_ spec: DirectiveSpec) -> String {
        var notes: [String] = []
        if case .partial(let what) = spec.status { notes.append(what) }
        if let note = spec.note { notes.append(note) }
        if spec.repeatable && !spec.isBlock { notes.append("May repeat at one level.") }
        let cells = [
            "`\(spec.name)`",
            spec.contexts.names.joined(separator: ", "),
            spec.arity.nginxName,
            spec.status.label,
            notes.joined(separator: " ").replacingPipes(),
        ]
        return cells.joined(separator: " | ")
    }
}

extension String {
    fileprivate func replacingPipes() -> String {
        split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|")
    }
}
