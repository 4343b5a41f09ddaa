import NIOHTTP1
import NginxConfig

/// nginx's `ngx_http_gzip_ok`: whether a request may get a gzipped answer (on-the-fly `gzip` or
/// `gzip_static on`), from `gzip_http_version`, `gzip_proxied` and `gzip_disable`. Pure, so the
/// rules are tested without sockets; the `Accept-Encoding` test stays with the request.
struct GzipPolicy: Sendable {
    /// `gzip_proxied` flags; `off` wins over the others, as nginx's bitmask does.
    struct Proxied: OptionSet, Sendable {
        let rawValue: Int
        static let off = Proxied(rawValue: 1 << 0)
        static let expired = Proxied(rawValue: 1 << 1)
        static let noCache = Proxied(rawValue: 1 << 2)
        static let noStore = Proxied(rawValue: 1 << 3)
        static let `private` = Proxied(rawValue: 1 << 4)
        static let noLastModified = Proxied(rawValue: 1 << 5)
        static let noETag = Proxied(rawValue: 1 << 6)
        static let auth = Proxied(rawValue: 1 << 7)
        static let any = Proxied(rawValue: 1 << 8)

        static let names: [(String, Proxied)] = [
            ("off", .off), ("expired", .expired), ("no-cache", .noCache), ("no-store", .noStore), ("private", .private),
            ("no_last_modified", .noLastModified), ("no_etag", .noETag), ("auth", .auth), ("any", .any),
        ]
    }

    /// `gzip_http_version 1.0|1.1` as minor version of HTTP/1 (default 1.1).
    var minimumMinorVersion = 1
    var proxied: Proxied = .off
    var disableMSIE6 = false
    var disable: [ConfigRegex] = []

    /// What the decision reads from the request.
    struct Request {
        var major: Int
        var minor: Int
        var hasVia: Bool
        var hasAuthorization: Bool
        var userAgent: String?
    }

    /// What it reads from the response's headers (as they will be sent).
    struct Response {
        /// `Expires`, parsed; `.some(nil)` when present but unreadable.
        var expires: Int??
        /// `Date` (or now).
        var date: Int
        var cacheControl: [String]
        var hasLastModified: Bool
        var hasETag: Bool
    }

    func allows(_ request: Request, _ response: @autoclosure () -> Response) -> Bool {
        if disableMSIE6, let agent = request.userAgent, Self.isMSIE6(agent) { return false }
        if request.major < 1 || (request.major == 1 && request.minor < minimumMinorVersion) { return false }
        if request.hasVia && !proxiedAllows(request, response()) { return false }
        if let agent = request.userAgent, disable.contains(where: { $0.firstMatch(in: agent) != nil }) { return false }
        return true
    }

    /// A request that came through a proxy (it has `Via`): compressed only as `gzip_proxied` says.
    private func proxiedAllows(_ request: Request, _ response: Response) -> Bool {
        if proxied.contains(.off) { return false }
        if proxied.contains(.any) { return true }
        if request.hasAuthorization && proxied.contains(.auth) { return true }
        if let expires = response.expires {
            guard proxied.contains(.expired), let expires else { return false }
            return expires < response.date
        }
        if !response.cacheControl.isEmpty {
            let tokens = response.cacheControl.flatMap { $0.lowercased().split(separator: ",").map { $0.trimmingSpaces() } }
            if proxied.contains(.noCache) && tokens.contains(where: { $0.hasPrefix("no-cache") }) { return true }
            if proxied.contains(.noStore) && tokens.contains(where: { $0.hasPrefix("no-store") }) { return true }
            if proxied.contains(.private) && tokens.contains(where: { $0.hasPrefix("private") }) { return true }
            return false
        }
        if proxied.contains(.noLastModified) && response.hasLastModified { return false }
        if proxied.contains(.noETag) && response.hasETag { return false }
        return true
    }

    /// nginx's `msie6` test on `User-Agent`: "MSIE 4.", "MSIE 5.", or "MSIE 6." without "SV1"; never Opera.
    static func isMSIE6(_ agent: String) -> Bool {
        if agent.contains("Opera") { return false }
        let bytes = Array(agent.utf8)
        let marker = Array("MSIE ".utf8)
        guard let start = (0...max(0, bytes.count - marker.count)).first(where: { bytes.count >= marker.count && Array(bytes[$0..<$0 + marker.count]) == marker }),
              start + 7 < bytes.count, bytes[start + 6] == UInt8(ascii: ".") else { return false }
        switch bytes[start + 5] {
        case UInt8(ascii: "4"), UInt8(ascii: "5"): return true
        case UInt8(ascii: "6"): return !String(decoding: bytes[(start + 8)...], as: UTF8.self).contains("SV1")
        default: return false
        }
    }
}

extension GzipPolicy {
    /// From a location's (inherited) `gzip_http_version`, `gzip_proxied`, `gzip_disable`.
    init(scope: ConfigScope) throws(ConfigError) {
        if let version = scope.effective("gzip_http_version") {
            switch version.values[0] {
            case "1.0": minimumMinorVersion = 0
            case "1.1": minimumMinorVersion = 1
            default:
                throw ConfigError("invalid value \"\(version.values[0])\" in \"gzip_http_version\" directive, it must be \"1.0\" or \"1.1\"", at: version.location)
            }
        }
        // Array directives: the nearest level that has any replaces the outer ones, as nginx merges them.
        let proxiedLines = scope.effectiveList("gzip_proxied")
        if !proxiedLines.isEmpty {
            var flags: Proxied = []
            for line in proxiedLines {
                for value in line.values {
                    guard let flag = Proxied.names.first(where: { $0.0 == value.lowercased() })?.1 else {
                        throw ConfigError("invalid value \"\(value)\" in \"gzip_proxied\" directive", at: line.location)
                    }
                    flags.insert(flag)
                }
            }
            proxied = flags
        }
        // nginx keeps two settings: the regex list (replaced by the nearest level with a
        // `gzip_disable`) and the `msie6` flag (inherited from the nearest level that sets it).
        for line in scope.effectiveList("gzip_disable") {
            for value in line.values where value != "msie6" {
                do { disable.append(try ConfigRegex(value, caseInsensitive: true)) } catch {
                    throw ConfigError("\(error.description) in \"gzip_disable\" directive", at: line.location)
                }
            }
        }
        var level: ConfigScope? = scope
        while let current = level, !disableMSIE6 {
            disableMSIE6 = current.directives.contains { $0.name == "gzip_disable" && $0.values.contains("msie6") }
            level = current.parent
        }
    }
}

extension GzipPolicy.Response {
    /// A content module's answer (a proxied app's), from its headers as they will be sent.
    static func moduleResponse(_ headers: HTTPHeaders, now: Int) -> GzipPolicy.Response {
        let expires: Int?? = headers.first(name: "expires").map { HTTPDate.parse($0) }
        let date = headers.first(name: "date").flatMap { HTTPDate.parse($0) } ?? now
        return GzipPolicy.Response(expires: expires, date: date, cacheControl: headers[canonicalForm: "cache-control"].map(String.init),
                                   hasLastModified: headers.contains(name: "last-modified"), hasETag: headers.contains(name: "etag"))
    }

    /// A static file's answer as nginx's gzip filter sees it: `ETag` (`etag on`), what `expires`
    /// adds, and any `add_header Cache-Control|Expires`.
    static func staticFile(modificationTime: Int, etag: Bool, expires: Expires?, added: [(String, String)], now: Int)
        -> GzipPolicy.Response {
        var expiresAt: Int?? = nil
        var cacheControl: [String] = []
        switch expires {
        case nil: break
        case .epoch:
            expiresAt = 1
            cacheControl = ["no-cache"]
        case .max:
            expiresAt = 2_145_916_555
            cacheControl = ["max-age=315360000"]
        case .relative(let seconds):
            expiresAt = now + seconds
            cacheControl = [seconds < 0 ? "no-cache" : "max-age=\(seconds)"]
        case .modified(let seconds):
            let at = modificationTime + seconds
            expiresAt = at
            cacheControl = [at - now <= 0 ? "no-cache" : "max-age=\(at - now)"]
        }
        for (name, value) in added {
            switch name.lowercased() {
            case "cache-control": cacheControl.append(value)
            case "expires": if expiresAt == nil { expiresAt = .some(HTTPDate.parse(value)) }
            default: break
            }
        }
        // nginx's static handler sets only the time; the `Last-Modified` line is made after the
        // gzip filter has decided, so `no_last_modified` never sees one on a file (checked against nginx).
        return GzipPolicy.Response(expires: expiresAt, date: now, cacheControl: cacheControl,
                                   hasLastModified: false, hasETag: etag)
    }
}

extension GzipPolicy {
    /// nginx's reading of `Accept-Encoding` (`ngx_http_gzip_accept_encoding`): a `gzip` token
    /// (after the start, a comma or a space, any case) whose quality, if given, is not zero.
    /// nginx's quirks are kept: the digits after the point are added up, at most three of them.
    static func acceptsGzip(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.count >= 4 else { return false }
        if bytes.starts(with: Array("gzip,".utf8)) { return true }
        var searchFrom = 0
        var tokenEnd: Int?
        while searchFrom + 4 <= bytes.count {
            guard let found = (searchFrom...(bytes.count - 4)).first(where: { index in
                zip(bytes[index..<index + 4], "gzip".utf8).allSatisfy { $0 | 0x20 == $1 }
            }) else { return false }
            if found == 0 || bytes[found - 1] == UInt8(ascii: ",") || bytes[found - 1] == UInt8(ascii: " ") {
                tokenEnd = found + 4
                break
            }
            searchFrom = found + 4
        }
        guard var position = tokenEnd else { return false }
        // After the token: spaces, then `,` (accepted), `;` (a parameter) or the end.
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: ","): return true
            case UInt8(ascii: " "): continue
            case UInt8(ascii: ";"): return quality(bytes, from: position)
            default: return false
            }
        }
        return true
    }

    private static func quality(_ bytes: [UInt8], from start: Int) -> Bool {
        var position = start
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            if byte == UInt8(ascii: " ") { continue }
            guard byte | 0x20 == UInt8(ascii: "q") else { return false }
            guard position + 2 <= bytes.count, bytes[position] == UInt8(ascii: "=") else { return false }
            return qualityValue(bytes[(position + 1)...]) != 0
        }
        return true
    }

    private static func qualityValue(_ bytes: ArraySlice<UInt8>) -> Int {
        var iterator = bytes.makeIterator()
        guard let first = iterator.next(), first == UInt8(ascii: "0") || first == UInt8(ascii: "1") else { return 0 }
        var value = Int(first - UInt8(ascii: "0")) * 100
        guard let second = iterator.next() else { return value }
        if second == UInt8(ascii: ",") || second == UInt8(ascii: " ") { return value }
        guard second == UInt8(ascii: ".") else { return 0 }
        var digits = 0
        while let byte = iterator.next() {
            if byte == UInt8(ascii: ",") || byte == UInt8(ascii: " ") { break }
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return 0 }
            value += Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return value > 100 || digits > 3 ? 0 : value
    }
}
