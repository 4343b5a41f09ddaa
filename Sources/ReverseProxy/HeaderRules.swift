import HTTPFront
import NIOCore
import NIOHTTP1

/// nginx's header handling between client and upstream, as pure functions.
public enum HeaderRules {
    /// Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded, in either direction.
    public static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authenticate", "proxy-authorization",
    ]

    /// What nginx hides from upstream responses unless `proxy_pass_header` lets them through.
    public static let hiddenByDefault: Set<String> = [
        "date", "server", "x-pad", "x-accel-expires", "x-accel-redirect", "x-accel-limit-rate",
        "x-accel-buffering", "x-accel-charset",
    ]

    /// `proxy_set_header` defaults (`ngx_http_proxy_headers`). Content-Length and
    /// Transfer-Encoding are set from the body framing, so they appear here as empty.
    public static let defaultSetHeaders: [(String, String)] = [
        ("Host", "$proxy_host"), ("Connection", "close"), ("Content-Length", ""), ("Transfer-Encoding", ""),
        ("TE", ""), ("Keep-Alive", ""), ("Expect", ""), ("Upgrade", ""),
    ]

    /// Headers named in a `Connection` header are hop-by-hop for that message (lowercased;
    /// usually none or one, so an array: no set to build per request).
    static func connectionTokens(_ headers: HTTPHeaders) -> [String] {
        var tokens: [String] = []
        for (name, value) in headers where name.utf8.count == 10 && name.equalsIgnoringASCIICase("connection") {
            // The usual single `keep-alive` / `close` names no header: no splitting, no array.
            if value.equalsIgnoringASCIICase("keep-alive") || value.equalsIgnoringASCIICase("close") { continue }
            for token in value.split(separator: ",") {
                let lower = token.trimmed(" \t").lowercased()
                // `close` names no header and `keep-alive` is hop-by-hop anyway.
                if lower == "close" || lower == "keep-alive" { continue }
                if !tokens.contains(lower) { tokens.append(lower) }
            }
        }
        return tokens
    }

    /// Whether `name` (any case) is hop-by-hop. Compared in place: no lowercased copy, no hashing.
    static func isHopByHop(_ name: String) -> Bool {
        // By length first: most names match none of the nine.
        switch name.utf8.count {
        case 2: return name.equalsIgnoringASCIICase("te")
        case 7: return name.equalsIgnoringASCIICase("upgrade") || name.equalsIgnoringASCIICase("trailer")
        case 10: return name.equalsIgnoringASCIICase("connection") || name.equalsIgnoringASCIICase("keep-alive")
        case 16: return name.equalsIgnoringASCIICase("proxy-connection")
        case 17: return name.equalsIgnoringASCIICase("transfer-encoding")
        case 18: return name.equalsIgnoringASCIICase("proxy-authenticate")
        case 19: return name.equalsIgnoringASCIICase("proxy-authorization")
        default: return false
        }
    }

    /// Whether the client header `name` (`count` bytes) is one `proxy_set_header` names.
    private static func isSetHeader(_ name: String, count: Int, _ setHeaders: [(name: String, value: String)],
                                    _ setNames: [String]?) -> Bool {
        if let setNames { return setNames.contains { $0.utf8.count == count && name.equalsIgnoringASCIICase($0) } }
        return setHeaders.contains { $0.name.utf8.count == count && name.equalsIgnoringASCIICase($0.name) }
    }

    /// The bit of a name length in a length mask (lengths from 63 share the last bit).
    static func lengthBit(_ count: Int) -> UInt64 { 1 << UInt64(min(count, 63)) }

    /// The lengths of `names` as a mask of `lengthBit`s.
    static func lengthBits(_ names: some Sequence<String>) -> UInt64 {
        names.reduce(0) { $0 | lengthBit($1.utf8.count) }
    }

    /// Whether `name` (any case) is one of `lowercasedNames`.
    static func isNamed(_ name: String, in lowercasedNames: [String]) -> Bool {
        lowercasedNames.contains { $0.utf8.count == name.utf8.count && name.equalsIgnoringASCIICase($0) }
    }

    /// How the request body goes upstream.
    public enum BodyFraming: Sendable, Equatable {
        case none
        case length(Int)
        case chunked
    }

    /// The headers of the upstream request: the merged `proxy_set_header` list (user's first,
    /// then nginx's defaults not overridden; empty values dropped), then the client's headers
    /// whose names are not in that list and are not hop-by-hop.
    public static func upstreamRequestHeaders(setHeaders: [(name: String, value: String)], client: HTTPHeaders,
                                              passClientHeaders: Bool, framing: BodyFraming) -> HTTPHeaders {
        var out = HTTPHeaders()
        out.reserveCapacity(setHeaders.count + (passClientHeaders ? client.count : 0) + 1)
        forEachUpstreamRequestHeader(setHeaders: setHeaders, client: client, passClientHeaders: passClientHeaders,
                                     framing: framing) { name, value in out.add(name: name, value: value) }
        return out
    }

    /// What the upstream request head says about its connection.
    struct UpstreamRequestHeadInfo {
        /// `Connection: close` (or HTTP/1.0 without `keep-alive`): the server will close after answering.
        var closesConnection: Bool
        /// An `Upgrade` header goes upstream (a WebSocket handshake configured the nginx way).
        var upgrade: Bool
    }

    /// The upstream request head as bytes, written once per request straight into `buffer`
    /// (no `HTTPHeaders` and no encoder on the way): the same headers as `upstreamRequestHeaders`.
    static func writeUpstreamRequestHead(into buffer: inout ByteBuffer, method: String, uri: String, version: HTTPVersion,
                                         setHeaders: [(name: String, value: String)], client: HTTPHeaders,
                                         passClientHeaders: Bool, framing: BodyFraming,
                                         setNameLengths: UInt64 = .max, setNames: [String]? = nil) -> UpstreamRequestHeadInfo {
        buffer.writeString(method)
        buffer.writeStaticString(" ")
        buffer.writeString(uri)
        buffer.writeStaticString(version.minor >= 1 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n")
        var close = false
        var keepAlive = false
        var upgrade = false
        forEachUpstreamRequestHeader(setHeaders: setHeaders, client: client, passClientHeaders: passClientHeaders,
                                     framing: framing, setNameLengths: setNameLengths, setNames: setNames) { name, value in
            buffer.writeHeaderLine(name, value)
            switch name.utf8.count {
            case 10 where name.equalsIgnoringASCIICase("connection"):
                if value.equalsIgnoringASCIICase("close") {
                    close = true
                } else if value.equalsIgnoringASCIICase("keep-alive") {
                    keepAlive = true
                } else {
                    let lower = value.lowercased()
                    if lower.contains("close") { close = true }
                    if lower.contains("keep-alive") { keepAlive = true }
                }
            case 7 where name.equalsIgnoringASCIICase("upgrade"):
                upgrade = true
            default:
                break
            }
        }
        buffer.writeStaticString("\r\n")
        return UpstreamRequestHeadInfo(closesConnection: close || version.minor == 0 && version.major == 1 && !keepAlive,
                                       upgrade: upgrade)
    }

    /// Calls `body` with each upstream request header in order (see `upstreamRequestHeaders`).
    ///
    /// Runs once per proxied request, so names are compared in place (ASCII, case-insensitive)
    /// rather than lowercased and hashed into sets.
    /// `setNameLengths` has bit N set when a set header's name has N bytes (63: 63 or more; see
    /// `lengthBits`): a client header of another length is not looked up in the list. `setNames`,
    /// when given, is every `proxy_set_header` name (a client header so named is not passed), and
    /// `setHeaders` may then leave out those set to a constant empty value (they are never sent).
    static func forEachUpstreamRequestHeader(setHeaders: [(name: String, value: String)], client: HTTPHeaders,
                                             passClientHeaders: Bool, framing: BodyFraming, setNameLengths: UInt64 = .max,
                                             setNames: [String]? = nil, _ body: (String, String) -> Void) {
        for (name, value) in setHeaders where !value.isEmpty {
            let count = name.utf8.count
            if count == 14 && name.equalsIgnoringASCIICase("content-length")
                || count == 17 && name.equalsIgnoringASCIICase("transfer-encoding") { continue }
            body(name, value)
        }
        switch framing {
        case .none: break
        case .length(let length): body("Content-Length", String(length))
        case .chunked: body("Transfer-Encoding", "chunked")
        }
        guard passClientHeaders else { return }
        let dropped = connectionTokens(client)
        for (name, value) in client {
            let count = name.utf8.count
            if isHopByHop(name) || count == 14 && name.equalsIgnoringASCIICase("content-length")
                || (setNameLengths & lengthBit(count) != 0 && isSetHeader(name, count: count, setHeaders, setNames))
                || (!dropped.isEmpty && isNamed(name, in: dropped)) {
                continue
            }
            body(name, value)
        }
    }

    /// The upstream response's headers as the client gets them: hop-by-hop and hidden ones removed
    /// (`Upgrade`/`Connection` kept on a 101), `Location`/`Refresh` rewritten by `proxy_redirect`.
    public static func clientResponseHeaders(upstream: HTTPHeaders, status: Int, hidden: Set<String>,
                                             redirects: [ProxyRedirectRule]) -> HTTPHeaders {
        clientResponseHeaders(upstream: upstream, status: status, hidden: Array(hidden), redirects: redirects)
    }

    /// The same, with the hidden names (lowercase) as an array: compared in place, once per response.
    static func clientResponseHeaders(upstream: HTTPHeaders, status: Int, hidden: [String],
                                      redirects: [ProxyRedirectRule]) -> HTTPHeaders {
        var out: [(String, String)] = []
        out.reserveCapacity(upstream.count)
        let dropped = connectionTokens(upstream)
        for (name, value) in upstream {
            if status == 101, name.equalsIgnoringASCIICase("upgrade") || name.equalsIgnoringASCIICase("connection") {
                out.append((name, value))
                continue
            }
            if isHopByHop(name) || (!dropped.isEmpty && isNamed(name, in: dropped)) { continue }
            if isNamed(name, in: hidden) { continue }
            let count = name.utf8.count
            if count == 8 && name.equalsIgnoringASCIICase("location") || count == 7 && name.equalsIgnoringASCIICase("refresh") {
                out.append((name, ProxyRedirectRule.rewrite(value, header: name.lowercased(), rules: redirects)))
                continue
            }
            out.append((name, value))
        }
        return HTTPHeaders(out)
    }

    /// The client's header lines of an upstream response, written as bytes from the upstream's
    /// head: the same filter as `clientResponseHeaders` (for a final, non-101 response), minus
    /// `Server` and `Date`, which the front writes itself. Most lines are copied unchanged;
    /// only `Location`/`Refresh` become strings (for `proxy_redirect`).
    static func writeClientResponseHeaderLines(_ head: UpstreamResponseHead, hidden: [String],
                                               redirects: [ProxyRedirectRule], into out: inout ByteBuffer) {
        // Headers a `Connection` header names are hop-by-hop too (rare: usually it says keep-alive or close).
        var dropped: [String] = []
        head.withFieldBytes { _, name, value in
            guard name.count == 10, bytesEqualLowercased(name, "connection") else { return }
            if value.count == 10 && bytesEqualLowercased(value, "keep-alive") || value.count == 5 && bytesEqualLowercased(value, "close") {
                return
            }
            for token in String(decoding: value, as: UTF8.self).split(separator: ",") {
                let lower = token.trimmed(" \t").lowercased()
                if lower != "close" && lower != "keep-alive" && !dropped.contains(lower) { dropped.append(lower) }
            }
        }
        // The hidden names' lengths as bits: most lines match none of those lengths and skip the list.
        let hiddenLengths = lengthBits(hidden)
        head.bytes.withUnsafeReadableBytes { all in
            // Kept lines written as they are (`Name: value` then CRLF, the usual form) are copied in
            // runs: adjacent kept lines go out in one write.
            var runStart = 0
            var runEnd = 0
            func flushRun() {
                if runEnd > runStart { out.writeBytes(UnsafeRawBufferPointer(rebasing: all[runStart..<runEnd])) }
                runStart = 0
                runEnd = 0
            }
            for field in head.fields {
                let nameStart = Int(field.nameStart), nameEnd = Int(field.nameEnd)
                let valueStart = Int(field.valueStart), valueEnd = Int(field.valueEnd)
                let name = UnsafeRawBufferPointer(rebasing: all[nameStart..<nameEnd])
                let value = UnsafeRawBufferPointer(rebasing: all[valueStart..<valueEnd])
                if isHopByHop(bytes: name) || isFrontOwned(bytes: name) { continue }
                if !dropped.isEmpty, dropped.contains(where: { bytesEqualLowercased(name, string: $0) }) { continue }
                if hiddenLengths & lengthBit(name.count) != 0,
                   hidden.contains(where: { $0.utf8.count == name.count && bytesEqualLowercased(name, string: $0) }) { continue }
                if name.count == 8 && bytesEqualLowercased(name, "location") || name.count == 7 && bytesEqualLowercased(name, "refresh") {
                    flushRun()
                    let nameText = String(decoding: name, as: UTF8.self)
                    let rewritten = ProxyRedirectRule.rewrite(String(decoding: value, as: UTF8.self), header: nameText.lowercased(),
                                                              rules: redirects)
                    out.writeHeaderLine(nameText, rewritten)
                    continue
                }
                let canonical = valueStart == nameEnd + 2 && all[nameEnd + 1] == UInt8(ascii: " ")
                    && valueEnd + 2 <= all.count && all[valueEnd] == UInt8(ascii: "\r") && all[valueEnd + 1] == UInt8(ascii: "\n")
                if canonical {
                    if runEnd != nameStart {
                        flushRun()
                        runStart = nameStart
                    }
                    runEnd = valueEnd + 2
                    continue
                }
                flushRun()
                out.writeBytes(name)
                out.writeStaticString(": ")
                out.writeBytes(value)
                out.writeStaticString("\r\n")
            }
            flushRun()
        }
    }

    /// `isHopByHop` over bytes.
    static func isHopByHop(bytes name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 2: return bytesEqualLowercased(name, "te")
        case 7: return bytesEqualLowercased(name, "upgrade") || bytesEqualLowercased(name, "trailer")
        case 10: return bytesEqualLowercased(name, "connection") || bytesEqualLowercased(name, "keep-alive")
        case 16: return bytesEqualLowercased(name, "proxy-connection")
        case 17: return bytesEqualLowercased(name, "transfer-encoding")
        case 18: return bytesEqualLowercased(name, "proxy-authenticate")
        case 19: return bytesEqualLowercased(name, "proxy-authorization")
        default: return false
        }
    }

    /// `Server` and `Date`: the front's own lines.
    static func isFrontOwned(bytes name: UnsafeRawBufferPointer) -> Bool {
        name.count == 6 && bytesEqualLowercased(name, "server") || name.count == 4 && bytesEqualLowercased(name, "date")
    }

    /// ASCII case-insensitive comparison of bytes with a lowercase literal (read in place: no string to open).
    static func bytesEqualLowercased(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for index in 0..<bytes.count {
            let byte = bytes[index]
            let folded = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
            if folded != expected[index] { return false }
        }
        return true
    }

    /// ASCII case-insensitive comparison of bytes with a lowercase string.
    static func bytesEqualLowercased(_ bytes: UnsafeRawBufferPointer, string lowercase: String) -> Bool {
        var lowercase = lowercase
        return lowercase.withUTF8 { expected in
            guard expected.count == bytes.count else { return false }
            for index in 0..<bytes.count {
                let byte = bytes[index]
                let folded = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
                if folded != expected[index] { return false }
            }
            return true
        }
    }
}

/// One `proxy_redirect FROM TO;` pair (plain text prefix form; `default` is expanded at config load).
public struct ProxyRedirectRule: Sendable, Equatable {
    public var from: String
    public var to: String

    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }

    /// The first rule whose `from` prefixes the value replaces that prefix (for `Refresh`, the `url=` part).
    static func rewrite(_ value: String, header: String, rules: [ProxyRedirectRule]) -> String {
        if header == "refresh" {
            guard let range = value.firstRange(ofText: "url=") else { return value }
            let url = String(value[range.upperBound...])
            return String(value[..<range.upperBound]) + rewrite(url, header: "location", rules: rules)
        }
        for rule in rules where value.hasPrefix(rule.from) {
            return rule.to + value.dropFirst(rule.from.count)
        }
        return value
    }
}

extension String {
    fileprivate func firstRange(ofText needle: String) -> Range<String.Index>? {
        var start = startIndex
        while start < endIndex {
            if self[start...].hasPrefix(needle) { return start..<index(start, offsetBy: needle.count) }
            start = index(after: start)
        }
        return nil
    }
}

extension Substring {
    func trimmed(_ characters: String) -> String {
        var text = self
        while let first = text.first, characters.contains(first) { text = text.dropFirst() }
        while let last = text.last, characters.contains(last) { text = text.dropLast() }
        return String(text)
    }
}

extension String {
    /// ASCII case-insensitive equality, without making lowercased copies (header names are ASCII).
    func equalsIgnoringASCIICase(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        let fast = utf8.withContiguousStorageIfAvailable { a in
            other.utf8.withContiguousStorageIfAvailable { b in
                for i in 0..<a.count where a[i] != b[i] {
                    let x = a[i] | 0x20
                    guard x == b[i] | 0x20, x >= UInt8(ascii: "a"), x <= UInt8(ascii: "z") else { return false }
                }
                return true
            }
        }
        if let fast, let result = fast { return result }
        return utf8.elementsEqual(other.utf8) { x, y in
            x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= UInt8(ascii: "a") && (x | 0x20) <= UInt8(ascii: "z"))
        }
    }
}
