/// nginx's table of directives (its modules' `ngx_command_t` arrays), with Gantry's status for each.
///
/// The rows live in files by area (`DirectiveTable+Core.swift`, `+HTTP`, `+Proxy`, `+Upstream`,
/// `+AppPool`) so that each module's owner edits its own rows. One name may have several rows
/// for different contexts (`server` the block in `http`, `server` the address in `upstream`),
/// as in nginx, where the first row whose context matches wins.
public struct DirectiveTable: Sendable {
    public let specs: [DirectiveSpec]
    private let byName: [String: [DirectiveSpec]]

    public init(_ specs: [DirectiveSpec]) {
        self.specs = specs
        self.byName = Dictionary(grouping: specs, by: \.name)
    }

    /// Every directive Gantry knows: nginx's and its own.
    public static let standard = DirectiveTable(core + http + proxy + upstream + appPool)

    /// All rows with this name.
    public func rows(named name: String) -> [DirectiveSpec] { byName[name] ?? [] }

    /// The row for `name` that is allowed in `context`, if any.
    public func spec(named name: String, in context: DirectiveContexts) -> DirectiveSpec? {
        rows(named: name).first { $0.contexts.contains(context) }
    }
}
