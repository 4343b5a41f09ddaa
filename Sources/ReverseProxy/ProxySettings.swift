import HTTPFront
import NIOHTTP1
import NginxConfig

/// A location's proxy directives, compiled once at config load (nginx's `ngx_http_proxy_loc_conf_t`).
public struct ProxySettings: Sendable {
    public enum Destination: Sendable {
        /// A fixed `proxy_pass` URL.
        case fixed(ProxyPassTarget)
        /// `proxy_pass` with variables: rendered and parsed per request.
        case variable(ProxyTemplate)
    }

    public var destination: Destination
    public var passDirective: Directive
    /// The matched prefix replaced by the URI part (`location /one/` → `/one/`); nil in regex and named locations.
    public var locationPrefix: String?
    /// `proxy_set_header` merged with nginx's defaults, in nginx's order.
    public var setHeaders: [(name: String, value: ProxyTemplate)]
    public var httpVersion: HTTPVersion = .http1_0
    public var passRequestHeaders = true
    public var passRequestBody = true
    public var hiddenResponseHeaders: Set<String> {
        didSet { hiddenResponseHeaderList = Array(hiddenResponseHeaders) }
    }
    /// The same names as an array, for the per-response filter (no hashing, no set iteration).
    var hiddenResponseHeaderList: [String] = []
    public var redirects: [ProxyRedirectRule] = []
    /// `proxy_redirect default` with a variable `proxy_pass`: worked out per request.
    public var redirectDefault = true
    public var connectTimeout: Int64 = 60_000
    public var readTimeout: Int64 = 60_000
    public var sendTimeout: Int64 = 60_000
    public var nextUpstream = NextUpstreamPolicy.default
    public var nextUpstreamTries = 0
    public var nextUpstreamTimeout: Int64 = 0
    public var buffering = true
    /// `proxy_intercept_errors`: an upstream answer ≥ 300 with an `error_page` for its status
    /// gets the front's error handling instead.
    public var interceptErrors = false
    /// `proxy_ignore_headers X-Accel-Redirect` / `X-Accel-Buffering`.
    public var ignoresAccelRedirect = false
    public var ignoresAccelBuffering = false
    public var requestBuffering = true
    /// `client_max_body_size` (nginx default 1m; 0 = unlimited).
    public var clientMaxBodySize: Int64 = 1024 * 1024
    /// `client_body_buffer_size` (nginx's default 16k): bodies up to this size are read whole
    /// before connecting when `proxy_request_buffering` is on, so a failed try can be repeated.
    public var clientBodyBufferSize = 16 * 1024
    /// `proxy_buffers` (number × size; nginx's default `8 4k`): response bytes kept in memory
    /// for a slow client before the temp file is used, with `proxy_buffering on`.
    public var responseMemoryLimit = 8 * 4096
    /// `proxy_max_temp_file_size` (default 1024m; 0: no temp file, the upstream waits for the client).
    public var maxTempFileSize: Int64 = 1024 * 1024 * 1024
    /// `proxy_temp_file_write_size` (default two buffers): bytes being written to the temp file at once.
    public var tempFileWriteSize = 2 * 4096
    /// `proxy_temp_path` (levels are not used: the files are unlinked at once); relative to the prefix
    /// until the module resolves it.
    public var tempPath = "proxy_temp"
    /// `client_body_temp_path`, where `proxy_request_buffering on` keeps bodies past `client_body_buffer_size`.
    public var clientBodyTempPath = "client_body_temp"
    /// `proxy_buffer_size` (nginx's default: one 4k page): the most a response head may take;
    /// a larger one is "upstream sent too big header" (502).
    public var upstreamHeaderBufferSize = 4096

    /// Compiles the proxy directives of `location`; nil when it has no `proxy_pass` of its own.
    public static func compile(location: ConfigScope, match: LocationMatch?) throws(ConfigError) -> ProxySettings? {
        guard let pass = location.own("proxy_pass") else { return nil }
        guard pass.arguments.count == 1, let url = pass.arguments.first?.value else {
            throw ConfigError("invalid number of arguments in \"proxy_pass\" directive", at: pass.location)
        }
        let namedCaptures = Set<String>()
        let destination: Destination
        var target: ProxyPassTarget?
        if url.contains("$") {
            do { destination = .variable(try ProxyTemplate(url, namedCaptures: namedCaptures)) } catch {
                throw ConfigError(error.message, at: pass.location)
            }
        } else {
            do { target = try ProxyPassTarget.parse(url) } catch {
                throw ConfigError(error.description, at: pass.location)
            }
            destination = .fixed(target!)
        }
        var prefix: String?
        switch match {
        case .prefix(let text, _), .exact(let text): prefix = text
        case .regex, .named:
            if target?.uri != nil {
                throw ConfigError("\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block",
                                  at: pass.location)
            }
        case nil: prefix = nil
        }
        if location.kind == .ifBlock || location.kind == .limitExcept, target?.uri != nil {
            throw ConfigError("\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block",
                              at: pass.location)
        }

        // proxy_set_header: a level that sets any drops all inherited ones (nginx's array merge).
        var headers: [(name: String, value: ProxyTemplate)] = []
        var seen: Set<String> = []
        for directive in location.effectiveList("proxy_set_header") {
            guard directive.arguments.count == 2 else {
                throw ConfigError("invalid number of arguments in \"proxy_set_header\" directive", at: directive.location)
            }
            let name = directive.arguments[0].value
            do { headers.append((name, try ProxyTemplate(directive.arguments[1].value, namedCaptures: namedCaptures))) } catch {
                throw ConfigError(error.message, at: directive.location)
            }
            seen.insert(name.lowercased())
        }
        for (name, value) in HeaderRules.defaultSetHeaders where !seen.contains(name.lowercased()) {
            headers.append((name, try! ProxyTemplate(value)))
        }

        var hidden = HeaderRules.hiddenByDefault
        for directive in location.effectiveList("proxy_hide_header") {
            for value in directive.values { hidden.insert(value.lowercased()) }
        }
        for directive in location.effectiveList("proxy_pass_header") {
            for value in directive.values { hidden.remove(value.lowercased()) }
        }

        var settings = ProxySettings(destination: destination, passDirective: pass, locationPrefix: prefix,
                                     setHeaders: headers, hiddenResponseHeaders: hidden)
        settings.hiddenResponseHeaderList = Array(hidden)
        if let directive = location.effective("proxy_http_version") {
            switch directive.arguments.first?.value {
            case "1.0": settings.httpVersion = .http1_0
            case "1.1": settings.httpVersion = .http1_1
            default: throw ConfigError("invalid value \"\(directive.arguments.first?.value ?? "")\" in \"proxy_http_version\" directive", at: directive.location)
            }
        }
        if let directive = location.effective("proxy_pass_request_headers") { settings.passRequestHeaders = try DirectiveValues.flag(directive) }
        if let directive = location.effective("proxy_pass_request_body") { settings.passRequestBody = try DirectiveValues.flag(directive) }
        if let directive = location.effective("proxy_connect_timeout") { settings.connectTimeout = try DirectiveValues.time(directive) }
        if let directive = location.effective("proxy_read_timeout") { settings.readTimeout = try DirectiveValues.time(directive) }
        if let directive = location.effective("proxy_send_timeout") { settings.sendTimeout = try DirectiveValues.time(directive) }
        if let directive = location.effective("proxy_next_upstream") { settings.nextUpstream = try NextUpstreamPolicy.parse(directive) }
        if let directive = location.effective("proxy_next_upstream_tries") { settings.nextUpstreamTries = try DirectiveValues.integer(directive) }
        if let directive = location.effective("proxy_next_upstream_timeout") { settings.nextUpstreamTimeout = try DirectiveValues.time(directive) }
        if let directive = location.effective("proxy_buffering") { settings.buffering = try DirectiveValues.flag(directive) }
        if let directive = location.effective("proxy_intercept_errors") { settings.interceptErrors = try DirectiveValues.flag(directive) }
        let ignored = Set(location.effectiveList("proxy_ignore_headers").flatMap(\.values).map { $0.lowercased() })
        settings.ignoresAccelRedirect = ignored.contains("x-accel-redirect")
        settings.ignoresAccelBuffering = ignored.contains("x-accel-buffering")
        if let directive = location.effective("proxy_request_buffering") { settings.requestBuffering = try DirectiveValues.flag(directive) }
        if let directive = location.effective("client_max_body_size") { settings.clientMaxBodySize = try DirectiveValues.size(directive) }
        if let directive = location.effective("client_body_buffer_size") {
            settings.clientBodyBufferSize = Int(try DirectiveValues.size(directive))
        }
        var bufferSize = 4096
        if let directive = location.effective("proxy_buffer_size") { bufferSize = max(1, Int(try DirectiveValues.size(directive))) }
        settings.upstreamHeaderBufferSize = bufferSize
        var bufferCount = 8, buffersSize = 4096
        if let directive = location.effective("proxy_buffers") {
            bufferCount = try DirectiveValues.integer(directive, at: 0)
            buffersSize = Int(try DirectiveValues.size(directive, at: 1))
            guard bufferCount >= 2 else {
                throw ConfigError("there must be at least 2 \"proxy_buffers\"", at: directive.location)
            }
        }
        settings.responseMemoryLimit = bufferCount * buffersSize
        settings.tempFileWriteSize = 2 * max(bufferSize, buffersSize)
        if let directive = location.effective("proxy_temp_file_write_size") {
            settings.tempFileWriteSize = Int(try DirectiveValues.size(directive))
        }
        if let directive = location.effective("proxy_max_temp_file_size") {
            settings.maxTempFileSize = try DirectiveValues.size(directive)
        }
        if let path = location.effective("proxy_temp_path")?.arguments.first?.value { settings.tempPath = path }
        if let path = location.effective("client_body_temp_path")?.arguments.first?.value { settings.clientBodyTempPath = path }

        // proxy_redirect: `default` (the default), `off`, or FROM TO pairs.
        let redirects = location.effectiveList("proxy_redirect")
        settings.redirectDefault = redirects.isEmpty
        for directive in redirects {
            let values = directive.values
            if values == ["off"] { settings.redirects = []; settings.redirectDefault = false; continue }
            if values == ["default"] { settings.redirectDefault = true; continue }
            guard values.count == 2 else {
                throw ConfigError("invalid number of arguments in \"proxy_redirect\" directive", at: directive.location)
            }
            if values[0].hasPrefix("~") || values[0].contains("$") || values[1].contains("$") {
                throw ConfigError("\"proxy_redirect\" with regular expressions or variables is not supported by gantry", at: directive.location)
            }
            settings.redirects.append(ProxyRedirectRule(from: values[0], to: values[1]))
        }
        if settings.redirectDefault {
            guard let target else {
                if !redirects.isEmpty {
                    throw ConfigError("\"proxy_redirect default\" cannot be used with \"proxy_pass\" directive with variables",
                                      at: redirects[0].location)
                }
                settings.redirectDefault = false
                return settings
            }
            if let uri = target.uri {
                settings.redirects.insert(ProxyRedirectRule(from: target.url + uri, to: prefix ?? "/"), at: 0)
            } else {
                settings.redirects.insert(ProxyRedirectRule(from: target.url + "/", to: "/"), at: 0)
            }
        }
        return settings
    }
}
