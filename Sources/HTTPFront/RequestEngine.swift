#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import Logging
import NginxConfig

/// One request as it goes through nginx's phases; internal redirects
/// (`index`, `try_files`, `error_page`) change `uri` and run the phases again.
struct FrontRequest {
    var head: ParsedRequestHead
    var variables: RequestVariables
    var server: VirtualServer
    var uri: String
    /// The normalised URI the client asked for, before internal redirects.
    var originalURI = ""
    var args: String
    /// Set by `error_page` redirects: the status to answer with.
    var errorStatus: HTTPResponseStatus?
    /// The location a named redirect (`@name`) chose.
    var namedLocation: LocationSettings?
    var redirects = 0
    var inErrorPage = false
    /// The location of the last routing step (for logs, keep-alive settings).
    var location: LocationSettings?
    /// The engine runs again after a file probe: what the rewrite phases already did must not
    /// be done twice. The server's ran once; a location whose phase ran stays chosen while the
    /// URI and the redirect count are those it left (a `rewrite … break` keeps its location
    /// for a URI that another location would match).
    var serverRewriteDone = false
    var rewrittenLocation: (location: LocationSettings, uri: String, redirects: Int)?

    var isHead: Bool { head.method == "HEAD" }
    /// nginx reads the first `Accept-Encoding` line (see ``GzipPolicy/acceptsGzip(_:)``).
    var acceptsGzip: Bool {
        guard let value = head.headers.first(name: "accept-encoding") else { return false }
        return GzipPolicy.acceptsGzip(value)
    }
}

/// What the engine needs before it can go on, or what it decided.
enum EngineStep {
    case respond(FrontResponse)
    /// Probe this path off the event loop, then run again.
    case probe(ProbeKey)
    /// Compress this file off the event loop, then run again.
    case compress(OpenFile, level: Int32)
    /// A content module claimed the location.
    case content(any ContentHandler, LocationSettings)
}

/// The front's request phases for static content, run on the event loop
/// against the loop's open-file cache. Nothing here blocks: a path not in the
/// cache returns `.probe` and the caller probes it on the thread pool.
final class RequestEngine {
    let cache = OpenFileCache()
    /// The front's error log (`access forbidden by rule`).
    let logger: Logger?

    init(logger: Logger? = nil) {
        self.logger = logger
    }

    private(set) var gzipCache: [GzipKey: ByteBuffer] = [:]
    private var gzipCacheBytes = 0
    /// Compressed bodies kept per event loop; past this the cache starts over.
    static let gzipCacheLimit = 32 * 1024 * 1024

    func storeCompressed(_ body: ByteBuffer, for key: GzipKey) {
        if gzipCacheBytes + body.readableBytes > Self.gzipCacheLimit {
            gzipCache.removeAll()
            gzipCacheBytes = 0
        }
        gzipCache[key] = body
        gzipCacheBytes += body.readableBytes
    }
    let allocator = ByteBufferAllocator()

    struct GzipKey: Hashable {
        var inode: UInt64
        var modificationTime: Int
        var size: Int
        var level: Int32
    }

    private var now: NIODeadline = .now()

    func run(_ request: inout FrontRequest) -> EngineStep {
        now = .now()
        // The server's rewrite phase, once per request (not again after an internal redirect).
        if !request.serverRewriteDone, request.redirects == 0, !request.inErrorPage, let program = request.server.serverRewrite {
            request.serverRewriteDone = true
            request.variables.uri = request.uri
            request.variables.args = request.args
            let outcome = program.run(&request.variables)
            if let step = rewriteAnswer(outcome, &request, location: request.server.serverLevel) {
                request.location = request.server.serverLevel
                return step
            }
            // The location search below takes the rewritten URI.
            request.uri = request.variables.uri
            request.args = request.variables.args
        }
        while true {
            if request.redirects > 10 {
                // nginx: "rewrite or internal redirection cycle" → 500.
                return .respond(finishError(.internalServerError, &request, location: request.server.serverLevel, allowErrorPage: false))
            }
            let location: LocationSettings
            if let named = request.namedLocation {
                location = named
            } else if let pinned = request.rewrittenLocation, pinned.uri == request.uri, pinned.redirects == request.redirects {
                location = pinned.location
            } else if let found = request.server.locations.find(request.uri) {
                location = found.payload
                if let captures = found.captures {
                    request.variables.captures = captures.captures
                    request.variables.namedCaptures.merge(captures.named) { $1 }
                }
            } else {
                location = request.server.serverLevel
            }
            request.location = location
            request.variables.uri = request.uri
            request.variables.args = request.args
            // nginx checks `client_max_body_size` once the location is known, for every handler.
            if case .length(let length) = request.head.framing, location.clientMaxBodySize > 0,
               length > location.clientMaxBodySize, !request.inErrorPage {
                var response = errorResponse(.payloadTooLarge, &request, location: location)
                response.closeConnection = true
                return .respond(response)
            }
            // The location's rewrite phase (when no location matched, the server's own ran above).
            let phaseDone = request.rewrittenLocation.map { $0.location === location && $0.uri == request.uri && $0.redirects == request.redirects } ?? false
            let serverLevelRan = location === request.server.serverLevel && request.serverRewriteDone && request.redirects == 0
            if let program = location.rewrite, !phaseDone, !serverLevelRan {
                let outcome = program.run(&request.variables)
                if let step = rewriteAnswer(outcome, &request, location: location) { return step }
                request.uri = request.variables.uri
                request.args = request.variables.args
                if case .proceed(searchAgain: true) = outcome {
                    // nginx: a new location search, counted with the internal redirects (a
                    // rewrite that keeps matching ends in 500 after 10, as there).
                    request.redirects += 1
                    continue
                }
                request.rewrittenLocation = (location, request.uri, request.redirects)
            }
            // nginx's access phase: after `return` (rewrite phase), before any content.
            if !location.access.isEmpty && !location.access.allows(request.variables.remoteAddress) {
                let head = request.head
                logger?.error("access forbidden by rule, client: \(request.variables.remoteAddress), request: \"\(head.method) \(head.target) HTTP/\(head.version.major).\(head.version.minor)\"")
                return .respond(errorResponse(.forbidden, &request, location: location))
            }
            if let handler = location.content {
                return .content(handler, location)
            }
            switch staticContent(&request, location: location) {
            case .again:
                request.redirects += 1
                continue
            case .step(let step): return step
            }
        }
    }

    private enum Continuation {
        case again
        case step(EngineStep)
    }

    /// Maps `uri` to a file name under the location's root or alias; nil when it
    /// would leave the root or alias directory (Gantry refuses nginx's alias trap).
    func mapPath(_ uri: String, _ location: LocationSettings, _ variables: RequestVariables) -> (path: String, base: String)? {
        var base: String
        var path: String
        switch location.documentRoot {
        case .root(let template):
            base = template.render(variables)
            while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
            path = (base == "/" ? "" : base) + uri
        case .alias(let template, let prefix):
            base = template.render(variables)
            let rest = uri.utf8.starts(with: prefix.utf8) ? String(uri.dropFirst(prefix.count)) : uri
            path = base + rest
            while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        case .regexAlias(let template):
            path = template.render(variables)
            base = Self.literalDirectory(of: template)
        }
        guard Self.isInside(path, base: base) else { return nil }
        return (path, base)
    }

    /// The directory part of a template's leading literal (`/srv/img/` of `/srv/img/$1`).
    static func literalDirectory(of template: VariableTemplate) -> String {
        guard case .literal(let text)? = template.segments.first else { return "/" }
        guard template.segments.count > 1 else { return text }
        guard let slash = text.lastIndex(of: "/") else { return "/" }
        let dir = String(text[...slash])
        return dir.count > 1 ? String(dir.dropLast()) : dir
    }

    /// Whether `path` names `base` itself or something below it, with no `..`
    /// or `.` component and no NUL byte anywhere.
    static func isInside(_ path: String, base: String) -> Bool {
        if path.utf8.contains(0) { return false }
        for component in path.split(separator: "/", omittingEmptySubsequences: true) where component == ".." || component == "." {
            return false
        }
        if base == "/" { return path.hasPrefix("/") }
        return path == base || path.hasPrefix(base + "/")
    }

    private func probe(_ path: String, base: String, _ location: LocationSettings) -> FileProbe? {
        let key = ProbeKey(path: path, base: base, policy: location.symlinks)
        guard let (result, stale) = cache.lookup(key, now: now) else { return nil }
        if stale && !refreshing.contains(key) {
            refreshing.insert(key)
            staleKeys.append(key)
        }
        return result
    }

    func store(_ key: ProbeKey, _ result: FileProbe) {
        cache.store(key, result, now: .now())
        refreshing.remove(key)
    }

    func forgetRefresh(_ key: ProbeKey) { refreshing.remove(key) }

    /// Keys answered from a stale entry since the last call: the caller probes them in the background.
    func takeStaleKeys() -> [ProbeKey] {
        defer { staleKeys.removeAll(keepingCapacity: true) }
        return staleKeys
    }

    private var staleKeys: [ProbeKey] = []
    private var refreshing: Set<ProbeKey> = []

    private func staticContent(_ request: inout FrontRequest, location: LocationSettings) -> Continuation {
        // try_files (precontent phase).
        if let tryFiles = location.tryFiles {
            var matched = false
            for candidate in tryFiles.candidates {
                let rendered = candidate.render(request.variables)
                let wantsDirectory = rendered.hasSuffix("/") && rendered.count > 1
                guard let mapped = mapPath(rendered, location, request.variables) else { continue }
                guard let result = probe(mapped.path, base: mapped.base, location) else {
                    return .step(.probe(ProbeKey(path: mapped.path, base: mapped.base, policy: location.symlinks)))
                }
                switch result {
                case .file where !wantsDirectory, .directory where wantsDirectory:
                    request.uri = rendered
                    request.variables.uri = rendered
                    matched = true
                default:
                    continue
                }
                break
            }
            if !matched {
                switch tryFiles.fallback {
                case .status(let code):
                    return .step(.respond(errorResponse(HTTPResponseStatus(statusCode: code), &request, location: location)))
                case .named(let name):
                    guard let named = request.server.namedLocation(name) else {
                        return .step(.respond(errorResponse(.internalServerError, &request, location: location)))
                    }
                    request.namedLocation = named
                    return .again
                case .uri(let template):
                    let target = template.render(request.variables)
                    let parts = URIPath.split(target: target)
                    guard let normalized = try? URIPath.normalize(parts.path) else {
                        return .step(.respond(errorResponse(.internalServerError, &request, location: location)))
                    }
                    request.uri = normalized
                    request.namedLocation = nil
                    if !parts.query.isEmpty { request.args = String(parts.query) }
                    return .again
                }
            }
        }

        let method = request.head.method
        guard method == "GET" || method == "HEAD" || method == "POST" else {
            return .step(.respond(errorResponse(.methodNotAllowed, &request, location: location)))
        }

        // index (content phase) for a directory URI.
        if request.uri.hasSuffix("/") {
            for index in location.indexFiles {
                let name = index.render(request.variables)
                let candidateURI = name.hasPrefix("/") ? name : request.uri + name
                guard let mapped = mapPath(candidateURI, location, request.variables) else { continue }
                guard let result = probe(mapped.path, base: mapped.base, location) else {
                    return .step(.probe(ProbeKey(path: mapped.path, base: mapped.base, policy: location.symlinks)))
                }
                if case .file = result {
                    request.uri = candidateURI
                    request.namedLocation = nil
                    return .again
                }
            }
            guard let mapped = mapPath(request.uri, location, request.variables) else {
                return .step(.respond(errorResponse(.notFound, &request, location: location)))
            }
            guard let result = probe(mapped.path, base: mapped.base, location) else {
                return .step(.probe(ProbeKey(path: mapped.path, base: mapped.base, policy: location.symlinks)))
            }
            switch result {
            case .directory, .forbidden: return .step(.respond(errorResponse(.forbidden, &request, location: location)))
            default: return .step(.respond(errorResponse(.notFound, &request, location: location)))
            }
        }

        guard let mapped = mapPath(request.uri, location, request.variables) else {
            return .step(.respond(errorResponse(.notFound, &request, location: location)))
        }
        guard let result = probe(mapped.path, base: mapped.base, location) else {
            return .step(.probe(ProbeKey(path: mapped.path, base: mapped.base, policy: location.symlinks)))
        }
        switch result {
        case .missing:
            return .step(.respond(errorResponse(.notFound, &request, location: location)))
        case .forbidden:
            return .step(.respond(errorResponse(.forbidden, &request, location: location)))
        case .directory:
            var response = redirect(.movedPermanently, to: absoluteURL(URIPath.escape(request.uri + "/") + (request.args.isEmpty ? "" : "?" + request.args), request), request, location: location)
            response.location = location
            return .step(.respond(response))
        case .file(let file):
            if method == "POST" {
                return .step(.respond(errorResponse(.methodNotAllowed, &request, location: location)))
            }
            return .step(serveFile(file, path: mapped.path, base: mapped.base, &request, location: location))
        }
    }

    /// nginx's `ngx_http_gzip_ok` beyond `Accept-Encoding` (see ``GzipPolicy``).
    private func gzipAllowed(_ file: OpenFile, _ request: inout FrontRequest, location: LocationSettings) -> Bool {
        let headers = request.head.headers
        let facts = GzipPolicy.Request(major: request.head.version.major, minor: request.head.version.minor,
                                       hasVia: headers.contains(name: "via"), hasAuthorization: headers.contains(name: "authorization"),
                                       userAgent: headers.first(name: "user-agent"))
        let variables = request.variables
        return location.gzipPolicy.allows(facts, .staticFile(
            modificationTime: file.modificationTime, etag: location.etag, expires: location.expires,
            added: location.addHeaders.compactMap { addition in
                let name = addition.name.lowercased()
                guard name == "cache-control" || name == "expires" else { return nil }
                let value = addition.value.render(variables)
                return value.isEmpty ? nil : (addition.name, value)
            },
            now: Int(Glibc.time(nil))))
    }

    private func serveFile(_ file: OpenFile, path: String, base: String, _ request: inout FrontRequest, location: LocationSettings) -> EngineStep {
        var file = file
        var contentEncoding: String?
        var status = request.errorStatus ?? .ok
        // nginx says `Vary: Accept-Encoding` (gzip_vary) whenever a compressed form exists or could be
        // made, whether or not this client gets it.
        var varies = false
        if location.gzipStatic != .off && status == .ok {
            let allowed = location.gzipStatic == .always || (request.acceptsGzip && gzipAllowed(file, &request, location: location))
            if allowed || location.gzipVary {
                let gzPath = path + ".gz"
                guard let gz = probe(gzPath, base: base, location) else {
                    return .probe(ProbeKey(path: gzPath, base: base, policy: location.symlinks))
                }
                if case .file(let compressed) = gz {
                    varies = location.gzipStatic == .on  // `always` does not vary, as nginx
                    if allowed {
                        file = compressed
                        contentEncoding = "gzip"
                    }
                }
            }
        }
        let contentType = location.types.type(forFileName: path) ?? location.defaultType
        var response = FrontResponse(status: status)
        response.location = location
        response.headers.append(("Content-Type", contentType))
        let lastModified = HTTPDate.rfc1123(file.modificationTime)
        let etag = file.etag
        var preconditions = Preconditions()
        let headers = request.head.headers
        if status == .ok {
            preconditions = Preconditions(ifMatch: headers.first(name: "if-match"), ifNoneMatch: headers.first(name: "if-none-match"),
                                          ifModifiedSince: headers.first(name: "if-modified-since"),
                                          ifUnmodifiedSince: headers.first(name: "if-unmodified-since"), ifRange: headers.first(name: "if-range"))
            preconditions.modifiedSinceMode = location.ifModifiedSince
            if !location.etag {
                preconditions.ifMatch = nil
                preconditions.ifNoneMatch = nil
            }
            switch preconditions.evaluate(etag: etag, lastModified: file.modificationTime) {
            case .proceed: break
            case .notModified:
                var notModified = FrontResponse(status: .notModified)
                notModified.location = location
                notModified.headers = [("Last-Modified", lastModified)]
                if location.etag { notModified.headers.append(("ETag", etag)) }
                if let contentEncoding { notModified.headers.append(("Content-Encoding", contentEncoding)) }
                return .respond(notModified)
            case .preconditionFailed:
                return .respond(errorResponse(.preconditionFailed, &request, location: location))
            }
        }
        if status == .ok {
            response.headers.append(("Last-Modified", lastModified))
            if location.etag { response.headers.append(("ETag", etag)) }
        }
        if let contentEncoding {
            response.headers.append(("Content-Encoding", contentEncoding))
        }
        response.suppressBody = request.isHead

        // On-the-fly gzip for small-enough text types.
        if let gzip = location.gzip, contentEncoding == nil, status == .ok,
           file.size >= gzip.minLength, gzip.anyType || gzip.types.contains(contentType) {
            varies = true
        }
        if location.gzipVary && varies { response.headers.append(("Vary", "Accept-Encoding")) }
        if let gzip = location.gzip, contentEncoding == nil, status == .ok, request.acceptsGzip,
           file.size >= gzip.minLength, file.size <= Gzip.maximumSize, gzip.anyType || gzip.types.contains(contentType),
           gzipAllowed(file, &request, location: location) {
            let key = GzipKey(inode: file.inode, modificationTime: file.modificationTime, size: file.size, level: gzip.level)
            guard let compressed = gzipCache[key] else { return .compress(file, level: gzip.level) }
            if location.etag {
                response.headers.removeAll { $0.0 == "ETag" }
                response.headers.append(("ETag", "W/" + etag))
            }
            response.headers.append(("Content-Encoding", "gzip"))
            response.body = [.bytes(compressed)]
            response.contentLength = compressed.readableBytes
            return .respond(response)
        }

        if status == .ok && location.maxRanges > 0 {
            response.headers.append(("Accept-Ranges", "bytes"))
            if preconditions.rangeApplies(etag: etag, lastModified: file.modificationTime) {
                switch ByteRanges.evaluate(headers.first(name: "range"), size: file.size, maxRanges: location.maxRanges) {
                case .whole: break
                case .unsatisfiable:
                    var refused = errorResponse(.rangeNotSatisfiable, &request, location: location)
                    refused.headers.append(("Content-Range", "bytes */\(file.size)"))
                    return .respond(refused)
                case .ranges(let ranges) where ranges.count == 1:
                    status = .partialContent
                    response.status = status
                    let range = ranges[0]
                    response.headers.append(("Content-Range", "bytes \(range.lowerBound)-\(range.upperBound)/\(file.size)"))
                    response.body = [piece(file, range.lowerBound, range.upperBound + 1)]
                    response.contentLength = range.count
                    return .respond(response)
                case .ranges(let ranges):
                    status = .partialContent
                    response.status = status
                    let boundary = String(format: "%020d", Int.random(in: 1...99_999_999_999))
                    response.headers.removeAll { $0.0 == "Content-Type" }
                    response.headers.insert(("Content-Type", "multipart/byteranges; boundary=\(boundary)"), at: 0)
                    var body: [BodyPiece] = []
                    var total = 0
                    for range in ranges {
                        var separator = allocator.buffer(capacity: 128)
                        separator.writeString("\r\n--\(boundary)\r\nContent-Type: \(contentType)\r\nContent-Range: bytes \(range.lowerBound)-\(range.upperBound)/\(file.size)\r\n\r\n")
                        total += separator.readableBytes + range.count
                        body.append(.bytes(separator))
                        body.append(piece(file, range.lowerBound, range.upperBound + 1))
                    }
                    var closing = allocator.buffer(capacity: 32)
                    closing.writeString("\r\n--\(boundary)--\r\n")
                    total += closing.readableBytes
                    body.append(.bytes(closing))
                    response.body = body
                    response.contentLength = total
                    return .respond(response)
                }
            }
        }
        response.body = file.size > 0 ? [piece(file, 0, file.size)] : []
        response.contentLength = file.size
        return .respond(response)
    }

    private func piece(_ file: OpenFile, _ start: Int, _ end: Int) -> BodyPiece {
        if let contents = file.contents {
            return .bytes(contents.getSlice(at: contents.readerIndex + start, length: end - start)!)
        }
        return .file(file, start: start, end: end)
    }

    // MARK: return, redirects, errors

    /// The answer a rewrite phase gave, or nil to go on.
    private func rewriteAnswer(_ outcome: RewriteProgram.Outcome, _ request: inout FrontRequest, location: LocationSettings) -> EngineStep? {
        switch outcome {
        case .proceed:
            return nil
        case .answer(let action):
            return returnResponse(action, &request, location: location)
        case .redirect(let status, let url):
            let absolute = url.hasPrefix("/") ? absoluteURL(url, request) : url
            return .respond(redirect(HTTPResponseStatus(statusCode: status), to: absolute, request, location: location))
        }
    }

    private func returnResponse(_ action: ReturnAction, _ request: inout FrontRequest, location: LocationSettings) -> EngineStep {
        let status = HTTPResponseStatus(statusCode: action.status)
        let value = action.value?.render(request.variables)
        switch action.status {
        case 301, 302, 303, 307, 308:
            let target = value ?? ""
            let url = target.hasPrefix("/") ? absoluteURL(target, request) : target
            return .respond(redirect(status, to: url, request, location: location))
        default:
            if action.status == 444 {
                var close = FrontResponse(status: status)
                close.closeWithoutResponse = true
                return .respond(close)
            }
            if let text = value {
                var response = FrontResponse(status: status)
                response.location = location
                var buffer = allocator.buffer(capacity: text.utf8.count)
                buffer.writeString(text)
                response.headers.append(("Content-Type", location.defaultType))
                response.body = [.bytes(buffer)]
                response.contentLength = buffer.readableBytes
                response.suppressBody = request.isHead
                return .respond(response)
            }
            return .respond(errorResponse(status, &request, location: location))
        }
    }

    /// `scheme://host[:port]` + path, as nginx's `absolute_redirect on` builds it.
    func absoluteURL(_ path: String, _ request: FrontRequest) -> String {
        let v = request.variables
        let host = request.head.headers.first(name: "host").flatMap { ServerNameTable<VirtualServer>.normalizeHost($0) } ?? v.serverName
        let defaultPort = v.scheme == "https" ? "443" : "80"
        let port = v.serverPort == defaultPort || v.serverPort.isEmpty ? "" : ":\(v.serverPort)"
        return "\(v.scheme)://\(host.isEmpty ? v.serverAddress : host)\(port)\(path)"
    }

    private func redirect(_ status: HTTPResponseStatus, to url: String, _ request: FrontRequest, location: LocationSettings) -> FrontResponse {
        var response = FrontResponse.builtinPage(status, serverTokens: location.serverTokens, allocator: allocator)
        response.location = location
        response.headers.append(("Location", url))
        response.suppressBody = request.isHead
        return response
    }

    /// An error status through `error_page`, or nginx's built-in page.
    func errorResponse(_ status: HTTPResponseStatus, _ request: inout FrontRequest, location: LocationSettings) -> FrontResponse {
        finishError(status, &request, location: location, allowErrorPage: true)
    }

    private func finishError(_ status: HTTPResponseStatus, _ request: inout FrontRequest, location: LocationSettings, allowErrorPage: Bool) -> FrontResponse {
        if allowErrorPage, !request.inErrorPage, let page = location.errorPages[Int(status.code)] {
            pendingErrorPage = (page, status)
        }
        var response = FrontResponse.builtinPage(status, serverTokens: location.serverTokens, allocator: allocator)
        response.location = location
        response.suppressBody = request.isHead
        return response
    }

    /// Set by `errorResponse` when an `error_page` applies; `run` callers turn it into a redirect.
    var pendingErrorPage: (ErrorPage, HTTPResponseStatus)?

    enum ErrorPageOutcome {
        case none
        case rerun
        case respond(FrontResponse)
    }

    /// Runs the phases, following `error_page` internal redirects.
    func process(_ request: inout FrontRequest) -> EngineStep {
        while true {
            pendingErrorPage = nil
            let step = run(&request)
            guard case .respond = step, pendingErrorPage != nil else { return step }
            switch applyErrorPage(&request) {
            case .none: return step
            case .rerun: continue
            case .respond(let response): return .respond(response)
            }
        }
    }

    /// The answer for an error a content module reports (`HTTPExchange.sendError`), through `error_page`.
    func processError(_ status: HTTPResponseStatus, _ request: inout FrontRequest, location: LocationSettings) -> EngineStep {
        pendingErrorPage = nil
        let response = errorResponse(status, &request, location: location)
        guard pendingErrorPage != nil else { return .respond(response) }
        switch applyErrorPage(&request) {
        case .none: return .respond(response)
        case .rerun: return process(&request)
        case .respond(let redirect): return .respond(redirect)
        }
    }

    /// Applies a pending `error_page`: an internal redirect (run again) or a redirect response.
    private func applyErrorPage(_ request: inout FrontRequest) -> ErrorPageOutcome {
        guard let (page, status) = pendingErrorPage else { return .none }
        pendingErrorPage = nil
        let code = page.overrideStatus.map { $0 == 0 ? status : HTTPResponseStatus(statusCode: $0) } ?? status
        switch page.target {
        case .redirect(let template):
            let redirectStatus: HTTPResponseStatus = [301, 302, 303, 307, 308].contains(Int(code.code)) ? code : .found
            request.inErrorPage = true
            return .respond(redirect(redirectStatus, to: template.render(request.variables), request, location: request.location ?? request.server.serverLevel))
        case .named(let name):
            guard let named = request.server.namedLocation(name) else { return .none }
            request.namedLocation = named
        case .uri(let template):
            let target = template.render(request.variables)
            let parts = URIPath.split(target: target)
            guard let normalized = try? URIPath.normalize(parts.path) else { return .none }
            request.uri = normalized
            request.args = String(parts.query)
            request.namedLocation = nil
        }
        request.redirects += 1
        request.inErrorPage = true
        request.errorStatus = page.overrideStatus == 0 ? nil : code
        if request.head.method != "HEAD" { request.head.method = "GET" }
        return .rerun
    }
}
