import NIOHTTP1
import NginxConfig

/// Where a location's files come from.
enum DocumentRoot: Sendable {
    /// `root PATH`: the file is PATH + `$uri`.
    case root(VariableTemplate)
    /// `alias PATH` in a prefix location: the location prefix of `$uri` is replaced by PATH.
    case alias(VariableTemplate, locationPrefix: String)
    /// `alias PATH` in a regex location: PATH (with captures) is the whole file name.
    case regexAlias(VariableTemplate)
}

/// One `try_files` argument: a file or `$uri/`-style directory, or the last fallback.
enum TryFilesFallback: Sendable {
    case uri(VariableTemplate)
    case named(String)
    case status(Int)
}

struct TryFiles: Sendable {
    var candidates: [VariableTemplate]
    var fallback: TryFilesFallback
}

/// `error_page CODES [=[RESPONSE]] TARGET`.
struct ErrorPage: Sendable {
    enum Target: Sendable {
        case uri(VariableTemplate)
        case named(String)
        /// A full URL: answered with a redirect (302 unless `=code`).
        case redirect(VariableTemplate)
    }

    var target: Target
    /// nil: keep the original status; 0: `=` alone (the target's own status); else `=code`.
    var overrideStatus: Int?
}

/// `return CODE [TEXT|URL]` / `return URL`.
struct ReturnAction: Sendable {
    var status: Int
    var value: VariableTemplate?
}

/// `add_header NAME VALUE [always]`.
struct HeaderAddition: Sendable {
    var name: String
    var value: VariableTemplate
    var always: Bool
}

/// `expires`.
enum Expires: Sendable, Equatable {
    case epoch
    case max
    /// Seconds from now (negative: `Cache-Control: no-cache`).
    case relative(Int)
    /// `expires modified TIME`: from the file's modification time.
    case modified(Int)
}

struct GzipSettings: Sendable {
    var types: Set<String>
    var anyType: Bool
    var minLength: Int
    var level: Int32
}

/// Everything the front needs to answer in one location, compiled once at load
/// from its `ConfigScope` (with nginx inheritance already applied).
final class LocationSettings: Sendable {
    let scope: ConfigScope
    let match: LocationMatch?
    let documentRoot: DocumentRoot
    let indexFiles: [VariableTemplate]
    let tryFiles: TryFiles?
    let types: MimeTypeMap
    let defaultType: String
    let expires: Expires?
    let addHeaders: [HeaderAddition]
    let errorPages: [Int: ErrorPage]
    /// `return` and `if (…) { return …; }` of this level, in order (nil: none).
    let rewrite: RewriteProgram?
    let gzipStatic: GzipStaticMode
    let gzip: GzipSettings?
    /// `gzip_http_version`, `gzip_proxied`, `gzip_disable`: who may get `gzip` and `gzip_static on`.
    let gzipPolicy: GzipPolicy
    /// `allow` / `deny` (ngx_http_access_module).
    let access: AccessRules
    let gzipVary: Bool
    let symlinks: SymlinkPolicy
    let accessLogs: [AccessLogTarget]
    let keepaliveTimeout: Int64
    /// The second `keepalive_timeout` parameter: sent as `Keep-Alive: timeout=N`.
    let keepaliveHeaderTimeout: Int?
    let keepaliveRequests: Int
    let sendTimeout: Int64
    let serverTokens: Bool
    let sendfile: Bool
    let clientMaxBodySize: Int
    let content: (any ContentHandler)?
    let etag: Bool
    let ifModifiedSince: Preconditions.ModifiedSinceMode
    /// `max_ranges`: more ranges than this serve the whole file; 0 disables ranges.
    let maxRanges: Int

    enum GzipStaticMode: Sendable { case off, on, always }

    init(scope: ConfigScope, match: LocationMatch?, compiler: SettingsCompiler) throws(ConfigError) {
        self.scope = scope
        self.match = match
        let captureNames: Set<String> = {
            if case .regex(let source, _) = match { return (try? ConfigRegex(source, caseInsensitive: false))?.captureNames ?? [] }
            return []
        }()
        func template(_ directive: Directive, _ index: Int = 0) throws(ConfigError) -> VariableTemplate {
            do {
                return try VariableTemplate(directive.values[index], namedCaptures: captureNames.union(compiler.serverCaptureNames))
            } catch {
                throw ConfigError(error.message, at: directive.location)
            }
        }

        // root / alias
        if let alias = scope.own("alias") {
            let path = compiler.absolute(alias.values[0])
            let t: VariableTemplate
            do { t = try VariableTemplate(path, namedCaptures: captureNames.union(compiler.serverCaptureNames)) } catch { throw ConfigError(error.message, at: alias.location) }
            switch match {
            case .prefix(let prefix, _), .exact(let prefix): documentRoot = .alias(t, locationPrefix: prefix)
            case .regex: documentRoot = .regexAlias(t)
            default: throw ConfigError("\"alias\" directive is not allowed here", at: alias.location)
            }
        } else if let root = scope.effective("root") {
            do { documentRoot = .root(try VariableTemplate(compiler.absolute(root.values[0]), namedCaptures: captureNames.union(compiler.serverCaptureNames))) } catch {
                throw ConfigError(error.message, at: root.location)
            }
        } else {
            documentRoot = .root(try! VariableTemplate(compiler.absolute("html")))
        }

        var indexes: [VariableTemplate] = []
        for directive in scope.effectiveList("index") {
            for i in directive.values.indices { indexes.append(try template(directive, i)) }
        }
        indexFiles = indexes.isEmpty ? [try! VariableTemplate("index.html")] : indexes

        if let directive = scope.own("try_files") {
            var candidates: [VariableTemplate] = []
            for i in 0..<(directive.values.count - 1) { candidates.append(try template(directive, i)) }
            let last = directive.values[directive.values.count - 1]
            let fallback: TryFilesFallback
            if last.hasPrefix("="), let code = Int(last.dropFirst()), (100...999).contains(code) {
                fallback = .status(code)
            } else if last.hasPrefix("@") {
                fallback = .named(String(last.dropFirst()))
            } else if last.hasPrefix("=") {
                throw ConfigError("invalid code \"\(last.dropFirst())\"", at: directive.location)
            } else {
                fallback = .uri(try template(directive, directive.values.count - 1))
            }
            tryFiles = TryFiles(candidates: candidates, fallback: fallback)
        } else {
            tryFiles = nil
        }

        types = compiler.types(for: scope)
        defaultType = scope.effective("default_type")?.values.first ?? "text/plain"

        if let directive = scope.effective("expires") {
            expires = try Self.parseExpires(directive)
        } else {
            expires = nil
        }

        var headers: [HeaderAddition] = []
        for directive in scope.effectiveList("add_header") {
            if directive.values.count == 3 && directive.values[2] != "always" {
                throw ConfigError("invalid parameter \"\(directive.values[2])\"", at: directive.location)
            }
            headers.append(HeaderAddition(name: directive.values[0], value: try template(directive, 1),
                                          always: directive.values.count == 3))
        }
        addHeaders = headers

        var pages: [Int: ErrorPage] = [:]
        for directive in scope.effectiveList("error_page") {
            var values = directive.values
            let targetText = values.removeLast()
            var override: Int?
            if let last = values.last, last.hasPrefix("=") {
                values.removeLast()
                if last == "=" { override = 0 } else {
                    guard let code = Int(last.dropFirst()) else {
                        throw ConfigError("invalid value \"\(last)\"", at: directive.location)
                    }
                    override = code
                }
            }
            let target: ErrorPage.Target
            if targetText.hasPrefix("@") {
                target = .named(String(targetText.dropFirst()))
            } else if targetText.hasPrefix("/") {
                target = .uri(try template(directive, directive.values.count - 1))
            } else {
                target = .redirect(try template(directive, directive.values.count - 1))
            }
            guard !values.isEmpty else { throw ConfigError("invalid number of arguments in \"error_page\" directive", at: directive.location) }
            for codeText in values {
                guard let code = Int(codeText), (300...599).contains(code) else {
                    throw ConfigError("value \"\(codeText)\" must be between 300 and 599", at: directive.location)
                }
                pages[code] = ErrorPage(target: target, overrideStatus: override)
            }
        }
        errorPages = pages

        rewrite = try RewriteProgram(scope.directives, namedCaptures: captureNames.union(compiler.serverCaptureNames))

        switch scope.effective("gzip_static")?.values.first {
        case nil, "off": gzipStatic = .off
        case "on": gzipStatic = .on
        case "always": gzipStatic = .always
        case let other?:
            throw ConfigError("invalid value \"\(other)\" in \"gzip_static\" directive, it must be \"on\", \"off\" or \"always\"",
                              at: scope.effective("gzip_static")!.location)
        }
        if try scope.flag("gzip", default: false) {
            let typeList = scope.effective("gzip_types")?.values ?? []
            gzip = GzipSettings(types: Set(typeList + ["text/html"]), anyType: typeList.contains("*"),
                                minLength: try scope.size("gzip_min_length", default: 20),
                                level: Int32(min(9, max(1, try scope.number("gzip_comp_level", default: 1)))))
        } else {
            gzip = nil
        }
        gzipVary = try scope.flag("gzip_vary", default: false)
        gzipPolicy = try GzipPolicy(scope: scope)
        access = try AccessRules(scope: scope)

        if let directive = scope.effective("disable_symlinks"), directive.values.count > 1 {
            throw ConfigError("\"disable_symlinks \(directive.values[1])\" is not supported by gantry", at: directive.location)
        }
        switch scope.effective("disable_symlinks")?.values.first {
        case nil: symlinks = .insideRoot
        case "off": symlinks = .follow
        case "on", "if_not_owner": symlinks = .refuseAll
        case let other?:
            throw ConfigError("invalid value \"\(other)\" in \"disable_symlinks\" directive", at: scope.effective("disable_symlinks")!.location)
        }

        accessLogs = try compiler.accessLogs(for: scope)
        if let directive = scope.effective("keepalive_timeout") {
            guard let ms = ConfigValues.parseTime(directive.values[0], unit: .milliseconds) else {
                throw ConfigError("invalid value \"\(directive.values[0])\"", at: directive.location)
            }
            keepaliveTimeout = Int64(ms)
            if directive.values.count > 1 {
                guard let header = ConfigValues.parseTime(directive.values[1], unit: .seconds) else {
                    throw ConfigError("invalid value \"\(directive.values[1])\"", at: directive.location)
                }
                keepaliveHeaderTimeout = header
            } else {
                keepaliveHeaderTimeout = nil
            }
        } else {
            keepaliveTimeout = 75_000
            keepaliveHeaderTimeout = nil
        }
        if match != nil || scope.kind == .server, let errorLog = scope.own("error_log") {
            throw ConfigError("\"error_log\" in \"\(scope.kind.rawValue)\" is not supported by gantry (one error log per process: the main or http one)",
                              at: errorLog.location)
        }
        keepaliveRequests = try scope.number("keepalive_requests", default: 1000)
        sendTimeout = Int64(try scope.milliseconds("send_timeout", default: 60_000))
        switch scope.effective("server_tokens")?.values.first {
        case nil, "on", "build": serverTokens = true
        case "off": serverTokens = false
        case let other?:
            throw ConfigError("invalid value \"\(other)\" in \"server_tokens\" directive, it must be \"on\", \"off\" or \"build\"",
                              at: scope.effective("server_tokens")!.location)
        }
        sendfile = try scope.flag("sendfile", default: false)
        clientMaxBodySize = try scope.size("client_max_body_size", default: 1 << 20)
        etag = try scope.flag("etag", default: true)
        switch scope.effective("if_modified_since")?.values.first {
        case nil, "exact": ifModifiedSince = .exact
        case "before": ifModifiedSince = .before
        case "off": ifModifiedSince = .off
        case let other?:
            throw ConfigError("invalid value \"\(other)\" in \"if_modified_since\" directive, it must be \"off\", \"exact\" or \"before\"",
                              at: scope.effective("if_modified_since")!.location)
        }
        maxRanges = try scope.number("max_ranges", default: Int.max)
        if let autoindex = scope.effective("autoindex"), try autoindex.flag() {
            throw ConfigError("\"autoindex on\" is not supported by gantry", at: autoindex.location)
        }
        content = try compiler.contentHandler(for: scope, match: match)
    }

    static func parseExpires(_ directive: Directive) throws(ConfigError) -> Expires? {
        var values = directive.values
        var modified = false
        if values.first == "modified" {
            modified = true
            values.removeFirst()
        }
        guard let text = values.first else { throw ConfigError("invalid number of arguments in \"expires\" directive", at: directive.location) }
        switch text {
        case "off": return nil
        case "epoch": return .epoch
        case "max": return .max
        default:
            let negative = text.hasPrefix("-")
            let body = negative || text.hasPrefix("+") ? String(text.dropFirst()) : text
            if body.hasPrefix("@") {
                throw ConfigError("\"expires @TIME\" is not supported by gantry", at: directive.location)
            }
            guard let seconds = ConfigValues.parseTime(body, unit: .seconds) else {
                throw ConfigError("invalid value \"\(text)\" in \"expires\" directive", at: directive.location)
            }
            let value = negative ? -seconds : seconds
            return modified ? .modified(value) : .relative(value)
        }
    }

    static func parseReturn(_ directive: Directive, template: (Directive, Int) throws(ConfigError) -> VariableTemplate) throws(ConfigError) -> ReturnAction {
        let first = directive.values[0]
        if let code = Int(first) {
            guard (0...999).contains(code) else { throw ConfigError("invalid return code \"\(first)\"", at: directive.location) }
            return ReturnAction(status: code, value: directive.values.count > 1 ? try template(directive, 1) : nil)
        }
        guard directive.values.count == 1,
              first.hasPrefix("http://") || first.hasPrefix("https://") || first.hasPrefix("$scheme") else {
            throw ConfigError("invalid return code \"\(first)\"", at: directive.location)
        }
        return ReturnAction(status: 302, value: try template(directive, 0))
    }
}

extension MimeTypeMap {
    /// The type for the extension of a file name (after the last `.` of the last segment).
    func type(forFileName path: String) -> String? {
        let utf8 = path.utf8
        guard let dot = utf8.lastIndex(of: UInt8(ascii: ".")) else { return nil }
        if let slash = utf8.lastIndex(of: UInt8(ascii: "/")), slash > dot { return nil }
        let ext = path[path.index(after: dot)...]
        guard !ext.isEmpty else { return nil }
        return byExtension[String(ext)] ?? type(forExtension: ext)
    }
}
