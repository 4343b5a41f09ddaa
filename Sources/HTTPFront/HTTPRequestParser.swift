import NIOCore
#if canImport(Glibc)
import Glibc
#endif
import NIOHTTP1

/// A request head as parsed, before routing.
struct ParsedRequestHead {
    var method: String
    var target: String
    var version: HTTPVersion
    var headers: HTTPHeaders
    var framing: BodyFraming
    /// Bytes of the head on the wire (for `large_client_header_buffers` accounting and logs).
    var length: Int
    /// Whether a `Connection` header came (the parser knows; without one the version decides).
    var hasConnectionHeader = true

    enum BodyFraming: Equatable {
        case none
        case length(Int)
        case chunked
    }

    /// HTTP/1.1 defaults to keep-alive, HTTP/1.0 to close; `Connection` overrides.
    var wantsKeepAlive: Bool {
        if !hasConnectionHeader { return version.major == 1 && version.minor >= 1 }
        let connection = headers[canonicalForm: "connection"].map { $0.lowercased() }
        if version.major == 1 && version.minor >= 1 { return !connection.contains("close") }
        return connection.contains("keep-alive")
    }
}

/// Why a request was refused while parsing, with the status nginx answers.
struct RequestParseError: Error, Equatable {
    var status: HTTPResponseStatus
    /// The text nginx writes to its error log for this case.
    var reason: String

    static func bad(_ reason: String) -> RequestParseError { .init(status: .badRequest, reason: reason) }
}

/// HTTP/1.x request parser with nginx's limits and answers: a request line
/// longer than a large header buffer gives 414, a header line longer than one
/// or a head larger than all of them gives 400 ("Request Header Or Cookie Too
/// Large"), `Content-Length` with `Transfer-Encoding` gives 400, an unknown
/// transfer coding 501. Pure over ByteBuffer so it is tested without sockets.
struct HTTPRequestParser {
    struct Limits: Equatable {
        /// One `large_client_header_buffers` buffer: the longest request line or header line.
        var largeBufferSize = 8192
        /// Number of buffers: the head may not exceed `count * size`.
        var largeBufferCount = 4
        /// `ignore_invalid_headers`: a header whose name has bytes other than letters, digits
        /// and `-` is dropped (on, nginx's default) or refused with 400 (off).
        var ignoreInvalidHeaders = true
        /// `underscores_in_headers`: `_` counts as a valid name byte (nginx: off).
        var underscoresInHeaders = false
    }

    enum Event: Equatable {
        case head(ParsedRequestHeadBox)
        case body(ByteBuffer)
        case end
    }

    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
    }

    var limits: Limits
    private var state: State = .head

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Consumes from `buffer` and returns the next event, or nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws(RequestParseError) -> Event? {
        switch state {
        case .head:
            guard let head = try parseHead(&buffer) else { return nil }
            switch head.framing {
            case .none: state = .head
            case .length(let n): state = n > 0 ? .fixedBody(remaining: n) : .head
            case .chunked: state = .chunkSize
            }
            return .head(ParsedRequestHeadBox(head))
        case .fixedBody(let remaining):
            if remaining == 0 {
                state = .head
                return .end
            }
            guard buffer.readableBytes > 0 else { return nil }
            let n = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: n)!
            state = .fixedBody(remaining: remaining - n)
            return .body(slice)
        case .chunkSize:
            guard let line = try readLine(&buffer, limit: 4096) else { return nil }
            let sizeText = line.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first?.trimmingSpaces() ?? ""
            guard !sizeText.isEmpty, sizeText.count <= 15, let size = Int(sizeText, radix: 16), size >= 0 else {
                throw .bad("client sent invalid chunked body")
            }
            state = size == 0 ? .trailers : .chunkData(remaining: size)
            return try next(&buffer)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let n = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: n)!
            state = remaining - n == 0 ? .chunkDataEnd : .chunkData(remaining: remaining - n)
            return .body(slice)
        case .chunkDataEnd:
            guard let line = try readLine(&buffer, limit: 2) else { return nil }
            guard line.isEmpty else { throw .bad("client sent invalid chunked body") }
            state = .chunkSize
            return try next(&buffer)
        case .trailers:
            while true {
                guard let line = try readLine(&buffer, limit: limits.largeBufferSize) else { return nil }
                if line.isEmpty {
                    state = .head
                    return .end
                }
            }
        }
    }

    /// Reads one line ending in LF (CR before it dropped); nil when incomplete.
    private func readLine(_ buffer: inout ByteBuffer, limit: Int) throws(RequestParseError) -> Substring? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > limit { throw .bad("client sent invalid chunked body") }
            return nil
        }
        var lineEnd = lf
        if lineEnd > view.startIndex, view[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
        let text = String(decoding: view[view.startIndex..<lineEnd], as: UTF8.self)
        buffer.moveReaderIndex(forwardBy: lf - view.startIndex + 1)
        return Substring(text)
    }

    private func parseHead(_ buffer: inout ByteBuffer) throws(RequestParseError) -> ParsedRequestHead? {
        // Leading empty lines before a request line are skipped, as nginx does.
        while let first = buffer.readableBytesView.first, first == UInt8(ascii: "\r") || first == UInt8(ascii: "\n") {
            buffer.moveReaderIndex(forwardBy: 1)
        }
        // Nothing yet (asked again after the previous request's bytes were used): no headers to set up.
        guard buffer.readableBytes > 0 else { return nil }
        let limits = self.limits
        return try buffer.withUnsafeReadableBytes { (bytes: UnsafeRawBufferPointer) throws(RequestParseError) -> (ParsedRequestHead, Int)? in
            let count = bytes.count
            var lineStart = 0
            var position = 0
            var requestLine: (method: String, target: String, version: HTTPVersion)?
            // Collected as pairs, made `HTTPHeaders` once: `HTTPHeaders.add` re-checks each name is ASCII
            // (the parser admits only ASCII name bytes already).
            var fields: [(String, String)] = []
            fields.reserveCapacity(16)
            var facts = HeaderFacts()
            while true {
                // Find the end of the current line.
                guard let lf = Self.indexOfLF(bytes, from: position) else {
                    let pending = count - lineStart
                    if requestLine == nil {
                        if pending > limits.largeBufferSize { throw RequestParseError(status: .uriTooLong, reason: "client sent too long URI") }
                    } else if pending > limits.largeBufferSize || count > limits.largeBufferSize * limits.largeBufferCount {
                        throw RequestParseError(status: .badRequest, reason: "client sent too large request or too long header line")
                    }
                    return nil
                }
                var lineEnd = lf
                if lineEnd > lineStart, bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                let lineLength = lineEnd - lineStart
                if requestLine == nil {
                    if lineLength > limits.largeBufferSize { throw RequestParseError(status: .uriTooLong, reason: "client sent too long URI") }
                    requestLine = try Self.parseRequestLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd]))
                } else if lineLength == 0 {
                    // End of head.
                    let line = requestLine!
                    let headers = HTTPHeaders(fields)
                    let framing = try Self.framing(facts, headers: headers, version: line.version)
                    var head = ParsedRequestHead(method: line.method, target: line.target, version: line.version,
                                                 headers: headers, framing: framing, length: lf + 1)
                    head.hasConnectionHeader = facts.connection
                    return (head, lf + 1)
                } else {
                    if lineLength > limits.largeBufferSize || lf + 1 > limits.largeBufferSize * limits.largeBufferCount {
                        throw RequestParseError(status: .badRequest, reason: "client sent too long header line")
                    }
                    try Self.parseHeaderLine(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd]), into: &fields,
                                             facts: &facts, limits: limits)
                }
                position = lf + 1
                lineStart = position
            }
        }.map { head, consumed in
            buffer.moveReaderIndex(forwardBy: consumed)
            return head
        }
    }

    private static func indexOfLF(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        guard from < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let found = memchr(base + from, Int32(UInt8(ascii: "\n")), bytes.count - from) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    private static func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(RequestParseError) -> (method: String, target: String, version: HTTPVersion) {
        // METHOD SP target SP HTTP/x.y  (nginx: method is A-Z, `_`, `-`).
        var i = 0
        let n = line.count
        while i < n, line[i] != UInt8(ascii: " ") {
            let c = line[i]
            guard (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") else {
                throw .bad("client sent invalid method")
            }
            i += 1
        }
        guard i > 0, i < n else { throw .bad("client sent invalid request") }
        let method = String(decoding: UnsafeRawBufferPointer(rebasing: line[0..<i]), as: UTF8.self)
        while i < n, line[i] == UInt8(ascii: " ") { i += 1 }
        let targetStart = i
        while i < n, line[i] != UInt8(ascii: " ") {
            let c = line[i]
            if c < 0x21 || c == 0x7f { throw .bad("client sent invalid request") }
            i += 1
        }
        let targetEnd = i
        guard targetEnd > targetStart else { throw .bad("client sent invalid request") }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: line[targetStart..<targetEnd]), as: UTF8.self)
        while i < n, line[i] == UInt8(ascii: " ") { i += 1 }
        let rest = UnsafeRawBufferPointer(rebasing: line[i..<n])
        // nginx serves HTTP/0.9 simple requests; Gantry refuses them with 400.
        guard rest.count >= 8, rest.starts(with: "HTTP/".utf8) else { throw .bad("client sent invalid request") }
        var major = 0, minor = 0
        var j = 5
        var digits = 0
        while j < rest.count, rest[j] >= UInt8(ascii: "0"), rest[j] <= UInt8(ascii: "9") {
            major = major * 10 + Int(rest[j] - UInt8(ascii: "0")); j += 1; digits += 1
            if digits > 3 { throw .bad("client sent invalid request") }
        }
        guard digits > 0, j < rest.count, rest[j] == UInt8(ascii: ".") else { throw .bad("client sent invalid request") }
        j += 1
        digits = 0
        while j < rest.count, rest[j] >= UInt8(ascii: "0"), rest[j] <= UInt8(ascii: "9") {
            minor = minor * 10 + Int(rest[j] - UInt8(ascii: "0")); j += 1; digits += 1
            if digits > 3 { throw .bad("client sent invalid request") }
        }
        guard digits > 0 else { throw .bad("client sent invalid request") }
        while j < rest.count, rest[j] == UInt8(ascii: " ") { j += 1 }
        guard j == rest.count else { throw .bad("client sent invalid request") }
        if major > 1 { throw RequestParseError(status: .httpVersionNotSupported, reason: "client sent unsupported HTTP version") }
        guard major == 1 else { throw .bad("client sent invalid request") }
        return (method, target, HTTPVersion(major: major, minor: minor))
    }

    /// nginx's header-name bytes: letters, digits, `-`, and `_` when `underscores_in_headers on`.
    private static func isNginxNameByte(_ c: UInt8, underscores: Bool) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"):
            return true
        case UInt8(ascii: "_"):
            return underscores
        default:
            return false
        }
    }

    /// What the framing and keep-alive rules need to know of the headers, noted while parsing
    /// them (looking each name up again afterwards costs a scan of every header per name).
    struct HeaderFacts {
        var hosts = 0
        var contentLengths = 0
        var transferEncodings = 0
        var connection = false
        var contentLength: String?

        /// Notes the header `name` (its bytes as received).
        mutating func note(_ name: UnsafeRawBufferPointer, value: @autoclosure () -> String) {
            switch name.count {
            case 4 where Self.equalsLowercased(name, "host"): hosts += 1
            case 10 where Self.equalsLowercased(name, "connection"): connection = true
            case 14 where Self.equalsLowercased(name, "content-length"):
                contentLengths += 1
                if contentLength == nil { contentLength = value() }
            case 17 where Self.equalsLowercased(name, "transfer-encoding"): transferEncodings += 1
            default: break
            }
        }

        private static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
            let expected = UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
            for i in 0..<bytes.count where bytes[i] | 0x20 != expected[i] { return false }
            return true
        }
    }

    private static func parseHeaderLine(_ line: UnsafeRawBufferPointer, into headers: inout [(String, String)], facts: inout HeaderFacts,
                                        limits: Limits) throws(RequestParseError) {
        // Obsolete line folding is refused, as nginx does.
        if line[0] == UInt8(ascii: " ") || line[0] == UInt8(ascii: "\t") { throw .bad("client sent invalid header line") }
        var colon = -1
        var validName = true
        for i in 0..<line.count {
            let c = line[i]
            if c == UInt8(ascii: ":") { colon = i; break }
            // A space or tab in the name is an invalid header line (400), other bytes only make it ignored.
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == 0 { throw .bad("client sent invalid header line") }
            if !isNginxNameByte(c, underscores: limits.underscoresInHeaders) { validName = false }
        }
        guard colon > 0 else { throw .bad("client sent invalid header line") }
        var valueStart = colon + 1
        var valueEnd = line.count
        while valueStart < valueEnd, line[valueStart] == UInt8(ascii: " ") || line[valueStart] == UInt8(ascii: "\t") { valueStart += 1 }
        while valueEnd > valueStart, line[valueEnd - 1] == UInt8(ascii: " ") || line[valueEnd - 1] == UInt8(ascii: "\t") { valueEnd -= 1 }
        for i in valueStart..<valueEnd where line[i] == 0 || line[i] == UInt8(ascii: "\r") {
            throw .bad("client sent invalid header line")
        }
        // nginx's `ignore_invalid_headers on`: a name with other bytes is dropped, not refused.
        guard validName else {
            if limits.ignoreInvalidHeaders { return }
            throw .bad("client sent invalid header line")
        }
        let nameBytes = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        let name = String(decoding: nameBytes, as: UTF8.self)
        let value = String(decoding: UnsafeRawBufferPointer(rebasing: line[valueStart..<valueEnd]), as: UTF8.self)
        facts.note(nameBytes, value: value)
        headers.append((name, value))
    }

    /// `framing(headers:version:)` from the facts noted while parsing; a `Transfer-Encoding` (rare)
    /// takes the full path over the headers.
    private static func framing(_ facts: HeaderFacts, headers: HTTPHeaders,
                                version: HTTPVersion) throws(RequestParseError) -> ParsedRequestHead.BodyFraming {
        if facts.transferEncodings > 0 { return try framing(headers: headers, version: version) }
        if facts.hosts > 1 { throw .bad("client sent duplicate host header") }
        if version.minor >= 1 && facts.hosts == 0 { throw .bad("client sent HTTP/1.1 request without \"Host\" header") }
        if facts.contentLengths > 1 { throw .bad("client sent duplicate header line: \"Content-Length\"") }
        if let text = facts.contentLength {
            guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(text) else {
                throw .bad("client sent invalid \"Content-Length\" header")
            }
            return .length(n)
        }
        return .none
    }

    private static func framing(headers: HTTPHeaders, version: HTTPVersion) throws(RequestParseError) -> ParsedRequestHead.BodyFraming {
        let lengths = headers[canonicalForm: "content-length"]
        let codings = headers["transfer-encoding"]
        if headers["host"].count > 1 { throw .bad("client sent duplicate host header") }
        if version.minor >= 1 && headers["host"].isEmpty { throw .bad("client sent HTTP/1.1 request without \"Host\" header") }
        if !codings.isEmpty {
            if !lengths.isEmpty { throw .bad("client sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time") }
            if version.minor == 0 { throw .bad("client sent \"Transfer-Encoding\" with HTTP/1.0") }
            guard codings.count == 1, codings[0].lowercased() == "chunked" else {
                throw RequestParseError(status: .notImplemented, reason: "client sent unknown \"Transfer-Encoding\": \"\(codings.joined(separator: ","))\"")
            }
            return .chunked
        }
        if headers["content-length"].count > 1 { throw .bad("client sent duplicate header line: \"Content-Length\"") }
        if let text = headers.first(name: "content-length") {
            guard !text.isEmpty, text.count <= 18, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let n = Int(text) else {
                throw .bad("client sent invalid \"Content-Length\" header")
            }
            return .length(n)
        }
        return .none
    }
}

/// Boxes the head so `Event` stays small and Equatable for tests.
struct ParsedRequestHeadBox: Equatable {
    var head: ParsedRequestHead
    init(_ head: ParsedRequestHead) { self.head = head }
    static func == (a: Self, b: Self) -> Bool {
        a.head.method == b.head.method && a.head.target == b.head.target && a.head.version == b.head.version
            && a.head.headers == b.head.headers && a.head.framing == b.head.framing
    }
}
