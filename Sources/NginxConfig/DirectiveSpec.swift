/// Where a directive may stand, as nginx's `NGX_MAIN_CONF`, `NGX_HTTP_SRV_CONF`, … flags.
public struct DirectiveContexts: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let main = DirectiveContexts(rawValue: 1 << 0)
    public static let events = DirectiveContexts(rawValue: 1 << 1)
    public static let http = DirectiveContexts(rawValue: 1 << 2)
    public static let server = DirectiveContexts(rawValue: 1 << 3)
    public static let location = DirectiveContexts(rawValue: 1 << 4)
    /// `if` inside `server` (nginx's `NGX_HTTP_SIF_CONF`).
    public static let serverIf = DirectiveContexts(rawValue: 1 << 5)
    /// `if` inside `location` (nginx's `NGX_HTTP_LIF_CONF`).
    public static let locationIf = DirectiveContexts(rawValue: 1 << 6)
    /// `limit_except` (nginx's `NGX_HTTP_LMT_CONF`).
    public static let limitExcept = DirectiveContexts(rawValue: 1 << 7)
    public static let upstream = DirectiveContexts(rawValue: 1 << 8)
    /// Gantry's own `app_pool NAME { }`.
    public static let appPool = DirectiveContexts(rawValue: 1 << 9)
    public static let types = DirectiveContexts(rawValue: 1 << 10)
    public static let map = DirectiveContexts(rawValue: 1 << 11)
    /// nginx's other top-level blocks (`stream`, `mail`): Gantry refuses them whole.
    public static let other = DirectiveContexts(rawValue: 1 << 12)

    /// `http`, `server`, `location`: the usual `NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF`.
    public static let httpServerLocation: DirectiveContexts = [.http, .server, .location]
    public static let serverLocation: DirectiveContexts = [.server, .location]
    public static let httpServer: DirectiveContexts = [.http, .server]
    /// The rewrite module's contexts: everywhere in http, including both kinds of `if`.
    public static let rewriteContexts: DirectiveContexts = [.server, .serverIf, .location, .locationIf]

    /// The names used in `nginx-compat/directives.md`.
    public var names: [String] {
        let all: [(DirectiveContexts, String)] = [
            (.main, "main"), (.events, "events"), (.http, "http"), (.server, "server"),
            (.location, "location"), (.serverIf, "if in server"), (.locationIf, "if in location"),
            (.limitExcept, "limit_except"), (.upstream, "upstream"), (.appPool, "app_pool"),
            (.types, "types"), (.map, "map"), (.other, "stream/mail"),
        ]
        return all.filter { contains($0.0) }.map(\.1)
    }
}

/// How many arguments a directive takes, as nginx's `NGX_CONF_TAKE1`, `NGX_CONF_1MORE`, … flags.
public struct DirectiveArity: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let noArgs = DirectiveArity(rawValue: 1 << 0)
    public static let take1 = DirectiveArity(rawValue: 1 << 1)
    public static let take2 = DirectiveArity(rawValue: 1 << 2)
    public static let take3 = DirectiveArity(rawValue: 1 << 3)
    public static let take4 = DirectiveArity(rawValue: 1 << 4)
    public static let take5 = DirectiveArity(rawValue: 1 << 5)
    public static let take6 = DirectiveArity(rawValue: 1 << 6)
    public static let take7 = DirectiveArity(rawValue: 1 << 7)
    /// Exactly one argument, `on` or `off`.
    public static let flag = DirectiveArity(rawValue: 1 << 8)
    public static let oneOrMore = DirectiveArity(rawValue: 1 << 9)
    public static let twoOrMore = DirectiveArity(rawValue: 1 << 10)
    public static let any = DirectiveArity(rawValue: 1 << 11)
    /// Opens a `{ }` block (`NGX_CONF_BLOCK`).
    public static let block = DirectiveArity(rawValue: 1 << 12)

    public static let take12: DirectiveArity = [.take1, .take2]
    public static let take13: DirectiveArity = [.take1, .take3]
    public static let take23: DirectiveArity = [.take2, .take3]
    public static let take123: DirectiveArity = [.take1, .take2, .take3]
    public static let take1234: DirectiveArity = [.take1, .take2, .take3, .take4]

    private static let byCount: [DirectiveArity] = [.noArgs, .take1, .take2, .take3, .take4, .take5, .take6, .take7]

    /// nginx's argument-count check in `ngx_conf_handler`.
    public func accepts(argumentCount n: Int) -> Bool {
        if contains(.any) { return true }
        if contains(.flag) { return n == 1 }
        if contains(.oneOrMore) { return n >= 1 || n == 0 && contains(.noArgs) }
        if contains(.twoOrMore) { return n >= 2 }
        guard n < Self.byCount.count else { return false }
        return contains(Self.byCount[n])
    }

    /// nginx's own name for the arity, for the directive matrix.
    public var nginxName: String {
        var parts: [String] = []
        if contains(.block) { parts.append("BLOCK") }
        if contains(.any) { parts.append("ANY") }
        if contains(.flag) { parts.append("FLAG") }
        if contains(.oneOrMore) { parts.append("1MORE") }
        if contains(.twoOrMore) { parts.append("2MORE") }
        if contains(.noArgs) { parts.append("NOARGS") }
        let takes = (1...7).filter { contains(Self.byCount[$0]) }
        if !takes.isEmpty { parts.append("TAKE" + takes.map(String.init).joined()) }
        return parts.joined(separator: "|")
    }
}

/// What Gantry does with a directive.
public enum DirectiveStatus: Sendable, Hashable {
    /// Implemented as nginx does it.
    case supported
    /// Implemented in part; the note says what is missing or differs.
    case partial(String)
    /// Pure tuning that changes no behaviour Gantry must honour: read, checked, and has no effect.
    case accepted
    /// Refused with `"NAME" is not supported by gantry`.
    case unsupported

    public var label: String {
        switch self {
        case .supported: "supported"
        case .partial: "partial"
        case .accepted: "accepted"
        case .unsupported: "unsupported"
        }
    }
}

/// How a directive's value is checked at load time, so every module reads already-valid values.
public enum DirectiveValueKind: Sendable, Hashable {
    /// Checked by the directive's own code (or not at all).
    case custom
    /// `on` / `off` (`ngx_conf_set_flag_slot`).
    case flag
    /// A non-negative integer (`ngx_conf_set_num_slot`).
    case number
    /// A size with `k`/`m` (`ngx_conf_set_size_slot`).
    case size
    /// A size with `k`/`m`/`g` (`ngx_conf_set_off_slot`).
    case offset
    /// A time in seconds (`ngx_conf_set_sec_slot`).
    case seconds
    /// A time in milliseconds (`ngx_conf_set_msec_slot`).
    case milliseconds
    /// One word of a set (`ngx_conf_set_enum_slot`), case-insensitive: else `invalid value "x"`.
    case oneOf([String])
    /// Each argument a word of a set (`ngx_conf_set_bitmask_slot`): else `invalid value "x"`.
    case eachOf([String])
}

/// One row of the directive table: nginx's `ngx_command_t` plus Gantry's status.
public struct DirectiveSpec: Sendable, Hashable {
    /// nginx's module name without `ngx_`/`_module` (`http_proxy`), or Gantry's own (`gantry_app_pool`).
    public var module: String
    public var name: String
    public var contexts: DirectiveContexts
    public var arity: DirectiveArity
    public var status: DirectiveStatus
    /// May be given more than once at one level (`listen`, `add_header`); otherwise a repeat is `"X" directive is duplicate`.
    public var repeatable: Bool
    public var value: DirectiveValueKind
    /// Differences from nginx, for the matrix.
    public var note: String?

    public init(module: String, _ name: String, _ contexts: DirectiveContexts, _ arity: DirectiveArity, _ status: DirectiveStatus,
                repeatable: Bool? = nil, value: DirectiveValueKind = .custom, note: String? = nil) {
        self.module = module
        self.name = name
        self.contexts = contexts
        self.arity = arity
        self.status = status
        self.repeatable = repeatable ?? (arity.contains(.block) && name != "http" && name != "events")
        self.value = value
        self.note = note
    }

    public var isBlock: Bool { arity.contains(.block) }
}
