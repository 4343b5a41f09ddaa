#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOHTTP1

/// Why an upstream response could not be read; the proxy answers 502 (nginx's `invalid_header`).
struct UpstreamResponseError: Error, Equatable, CustomStringConvertible {
    enum Kind: Equatable {
        /// The head did not fit in `proxy_buffer_size`.
        case tooBigHeader
        /// A malformed status line, header line or body framing.
        case invalid
    }

    var kind: Kind
    /// What nginx writes to its error log, without the "while reading …" context.
    var reason: String

    static let tooBig = UpstreamResponseError(kind: .tooBigHeader, reason: "upstream sent too big header")
    static func invalid(_ detail: String) -> UpstreamResponseError {
        UpstreamResponseError(kind: .invalid, reason: "upstream sent \(detail)")
    }

    var description: String { reason }
}

/// An HTTP/1.x response parser for the proxy's upstream side: status line and headers (nginx's
/// rules: LF-only lines accepted, obs-fold and bad bytes refused), then the body framed by
/// `Transfer-Encoding: chunked`, `Content-Length`, or the connection's close; 1xx interim heads,
/// and no body after HEAD, 204 and 304.
///
/// Pure: fed a `ByteBuffer`, it consumes what it understood and returns events, so it is
/// tested without sockets. One parser serves every response of a kept-alive connection
/// (`expectResponse` before each request).
struct UpstreamResponseParser {
    enum Event: Equatable {
        case head(UpstreamResponseHead)
        case body(ByteBuffer)
        case end
    }

    private enum State: Equatable {
        case idle
        case head
        case fixedBody(remaining: Int)
        case untilClose
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case done
    }

    /// `proxy_buffer_size`: the most bytes a response head may take.
    var maxHeadSize: Int
    private var state: State = .idle
    private var requestIsHEAD = false
    /// Whether the connection may serve another request after this response (set with the final head).
    private(set) var keepAlive = false
    /// Bytes of the trailer section seen so far (bounded like a head).
    private var trailerBytes = 0

    init(maxHeadSize: Int = 4096) {
        self.maxHeadSize = maxHeadSize
    }

    /// A request went out: the next bytes are its response.
    mutating func expectResponse(toHEAD: Bool) {
        state = .head
        requestIsHEAD = toHEAD
        keepAlive = false
    }

    /// Whether the current response's body ends only when the server closes.
    var readsUntilClose: Bool { state == .untilClose }

    /// Whether a response is complete (or none was asked for): the connection may be idle.
    var isIdle: Bool { state == .idle || state == .done }

    /// Consumes from `buffer` and returns the next event, or nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws(UpstreamResponseError) -> Event? {
        if pendingEnd {
            pendingEnd = false
            return .end
        }
        switch state {
        case .idle, .done:
            return nil
        case .head:
            return try parseHead(&buffer)
        case .fixedBody(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: count)!
            if count == remaining {
                state = .done
                pendingEnd = true  // `.end` on the next call
            } else {
                state = .fixedBody(remaining: remaining - count)
            }
            return .body(slice)
        case .untilClose:
            guard buffer.readableBytes > 0 else { return nil }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        case .chunkSize:
            return try parseChunkSize(&buffer)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: count)!
            state = count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - count)
            return .body(slice)
        case .chunkDataEnd:
            guard try consumeLineEnd(&buffer) else { return nil }
            state = .chunkSize
            return try parseChunkSize(&buffer)
        case .trailers:
            return try parseTrailers(&buffer)
        }
    }

    /// Set when a head without body or a body's last bytes were returned: `.end` comes next.
    private var pendingEnd = false

    /// What the server's close means for the response being read.
    enum CloseOutcome {
        /// No response was being read.
        case idle
        /// The end of a body delimited by the close.
        case end
        /// The response was cut short.
        case premature
    }

    /// The server closed the connection.
    mutating func connectionClosed() -> CloseOutcome {
        switch state {
        case .idle, .done: return .idle
        case .untilClose:
            state = .done
            return .end
        default:
            return .premature
        }
    }

    // MARK: Head

    private mutating func parseHead(_ buffer: inout ByteBuffer) throws(UpstreamResponseError) -> Event? {
        // Find the blank line ending the head (CRLF CRLF, or bare LFs as nginx accepts), by memchr.
        let available = buffer.readableBytes
        let end: Int? = buffer.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress else { return nil }
            var position = 0
            while position < available, let found = memchr(base + position, 0x0A, available - position) {
                let newline = base.distance(to: UnsafeRawPointer(found))
                if newline + 1 < available, bytes[newline + 1] == 0x0A { return newline + 2 }
                if newline + 2 < available, bytes[newline + 1] == 0x0D, bytes[newline + 2] == 0x0A { return newline + 3 }
                position = newline + 1
            }
            return nil
        }
        guard let headLength = end else {
            if available >= maxHeadSize { throw .tooBig }
            return nil
        }
        if headLength > maxHeadSize { throw .tooBig }
        var (head, framing) = try buffer.withUnsafeReadableBytes { bytes throws(UpstreamResponseError) in
            try Self.parseHeadBytes(UnsafeRawBufferPointer(rebasing: bytes[..<headLength]))
        }
        head.bytes = buffer.readSlice(length: headLength)!
        let status = Int(head.status.code)
        if status >= 100 && status < 200 && status != 101 {
            // An interim response (100 Continue, 103 Early Hints): the real one follows.
            state = .head
            return .head(head)
        }
        try frameBody(head, framing)
        return .head(head)
    }

    /// What the headers say about the body and the connection, gathered while parsing them.
    private struct Framing {
        var chunked = false
        var length: Int?
        var connectionClose = false
        var connectionKeepAlive = false
    }

    /// Status line and header lines of one head (the bytes end with its blank line).
    private static func parseHeadBytes(_ bytes: UnsafeRawBufferPointer) throws(UpstreamResponseError) -> (UpstreamResponseHead, Framing) {
        var lines = LineReader(bytes: bytes)
        guard let statusLine = lines.next(), statusLine.count >= 12 else { throw .invalid("no valid HTTP/1.0 header") }
        // "HTTP/1.x SSS[ reason]"
        let s = statusLine
        let b = s.startIndex
        guard s[b] == UInt8(ascii: "H"), s[b + 1] == UInt8(ascii: "T"), s[b + 2] == UInt8(ascii: "T"),
              s[b + 3] == UInt8(ascii: "P"), s[b + 4] == UInt8(ascii: "/"), s[b + 5] == UInt8(ascii: "1"),
              s[b + 6] == UInt8(ascii: "."), isDigit(s[b + 7]), s[b + 8] == UInt8(ascii: " "),
              isDigit(s[b + 9]), isDigit(s[b + 10]), isDigit(s[b + 11]),
              s.count == 12 || s[b + 12] == UInt8(ascii: " ")
        else { throw .invalid("no valid HTTP/1.0 header") }
        let minor = Int(s[b + 7] - 48)
        let code = Int(s[b + 9] - 48) * 100 + Int(s[b + 10] - 48) * 10 + Int(s[b + 11] - 48)
        guard code >= 100 else { throw .invalid("no valid HTTP/1.0 header") }
        // Known codes take NIO's own phrase; only an unknown one keeps the server's.
        let status = HTTPResponseStatus(statusCode: code)
        let reasonStatus = status.reasonPhrase.isEmpty && s.count > 13
            ? HTTPResponseStatus(statusCode: code, reasonPhrase: String(decoding: s[(b + 13)...], as: UTF8.self)) : status
        var fields: [UpstreamResponseHead.Field] = []
        fields.reserveCapacity(8)
        var framing = Framing()
        while let line = lines.next() {
            if line.isEmpty { break }
            let (name, value) = try splitHeaderLine(line)
            try classify(name: name, value: value, into: &framing)
            fields.append(UpstreamResponseHead.Field(nameStart: Int32(name.startIndex), nameEnd: Int32(name.endIndex),
                                                     valueStart: Int32(value.startIndex), valueEnd: Int32(value.endIndex)))
        }
        let head = UpstreamResponseHead(version: HTTPVersion(major: 1, minor: minor), status: reasonStatus, bytes: ByteBuffer(),
                                        fields: fields, hasContentLength: framing.length != nil)
        return (head, framing)
    }

    typealias Bytes = Slice<UnsafeRawBufferPointer>

    /// `Name: value`, nginx's way: a name of token bytes (no leading whitespace: no obs-fold),
    /// the value trimmed of spaces and tabs, no NUL, CR or LF inside.
    private static func splitHeaderLine(_ line: Bytes) throws(UpstreamResponseError) -> (name: Bytes, value: Bytes) {
        // Raw loads: the line's bounds are checked once here, not per byte (this runs for every header line).
        guard let base = line.base.baseAddress else { throw .invalid("invalid header") }
        let start = line.startIndex
        let end = line.endIndex
        var colon = -1
        var index = start
        while index < end {
            let byte = base.load(fromByteOffset: index, as: UInt8.self)
            if byte == UInt8(ascii: ":") { colon = index; break }
            guard isTokenByte(byte) else { throw .invalid("invalid header") }
            index += 1
        }
        guard colon > start else { throw .invalid("invalid header") }
        var valueStart = colon + 1
        var valueEnd = end
        func isBlank(_ offset: Int) -> Bool {
            let byte = base.load(fromByteOffset: offset, as: UInt8.self)
            return byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
        }
        while valueStart < valueEnd, isBlank(valueStart) { valueStart += 1 }
        while valueEnd > valueStart, isBlank(valueEnd - 1) { valueEnd -= 1 }
        var check = valueStart
        while check < valueEnd {
            let byte = base.load(fromByteOffset: check, as: UInt8.self)
            if byte == 0 || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") { throw .invalid("invalid header") }
            check += 1
        }
        return (line.base[start..<colon], line.base[valueStart..<valueEnd])
    }

    /// Notes `Transfer-Encoding`, `Content-Length` and `Connection` (compared as bytes: no strings for the usual headers).
    private static func classify(name: Bytes, value: Bytes, into framing: inout Framing) throws(UpstreamResponseError) {
        switch name.count {
        case 17 where equalsLowercased(name, "transfer-encoding"):
            // The last coding must be chunked (nginx refuses any other).
            var tokens = CommaTokens(value)
            var last: Bytes?
            while let token = tokens.next() { last = token }
            guard let last, equalsLowercased(last, "chunked") else {
                throw .invalid("unknown \"Transfer-Encoding\": \"\(String(decoding: value, as: UTF8.self))\"")
            }
            framing.chunked = true
        case 14 where equalsLowercased(name, "content-length"):
            guard !value.isEmpty, value.count <= 18 else { throw .invalid("invalid \"Content-Length\" header") }
            var length = 0
            for byte in value {
                guard isDigit(byte) else { throw .invalid("invalid \"Content-Length\" header") }
                length = length * 10 + Int(byte - 48)
            }
            if let previous = framing.length, previous != length {
                throw .invalid("duplicate header line: \"Content-Length: \(String(decoding: value, as: UTF8.self))\"")
            }
            framing.length = length
        case 10 where equalsLowercased(name, "connection"):
            var tokens = CommaTokens(value)
            while let token = tokens.next() {
                if equalsLowercased(token, "close") { framing.connectionClose = true }
                if equalsLowercased(token, "keep-alive") { framing.connectionKeepAlive = true }
            }
        default:
            break
        }
    }

    /// Chooses how the body of a final response is delimited.
    private mutating func frameBody(_ head: UpstreamResponseHead, _ framing: Framing) throws(UpstreamResponseError) {
        let status = Int(head.status.code)
        if framing.chunked && framing.length != nil {
            throw .invalid("\"Content-Length\" and \"Transfer-Encoding\" headers at the same time")
        }
        keepAlive = head.version.minor >= 1 ? !framing.connectionClose : framing.connectionKeepAlive && !framing.connectionClose
        if status == 101 {
            // The connection now belongs to the tunnel.
            keepAlive = false
            state = .done
            pendingEnd = true
        } else if requestIsHEAD || status == 204 || status == 304 {
            state = .done
            pendingEnd = true
        } else if framing.chunked {
            state = .chunkSize
        } else if let length = framing.length {
            if length == 0 {
                state = .done
                pendingEnd = true
            } else {
                state = .fixedBody(remaining: length)
            }
        } else {
            keepAlive = false
            state = .untilClose
        }
    }

    /// ASCII case-insensitive comparison with a lowercase literal.
    private static func equalsLowercased(_ bytes: Bytes, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        var offset = 0
        for byte in bytes {
            let folded = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
            if folded != expected[offset] { return false }
            offset += 1
        }
        return true
    }

    // MARK: Chunked body

    private mutating func parseChunkSize(_ buffer: inout ByteBuffer) throws(UpstreamResponseError) -> Event? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > 4096 { throw .invalid("invalid chunked response") }
            return nil
        }
        var size = 0
        var digits = 0
        var index = view.startIndex
        while index < newline, let digit = Self.hexValue(view[index]) {
            size = size * 16 + digit
            digits += 1
            if digits > 15 { throw .invalid("invalid chunked response") }
            index += 1
        }
        guard digits > 0 else { throw .invalid("invalid chunked response") }
        // Chunk extensions (`;name=value`) and spaces before the line end are skipped.
        if index < newline {
            let byte = view[index]
            guard byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
            else { throw .invalid("invalid chunked response") }
        }
        buffer.moveReaderIndex(to: newline + 1)
        if size == 0 {
            state = .trailers
            trailerBytes = 0
            return try parseTrailers(&buffer)
        }
        state = .chunkData(remaining: size)
        return try next(&buffer)
    }

    private mutating func parseTrailers(_ buffer: inout ByteBuffer) throws(UpstreamResponseError) -> Event? {
        // Trailer fields are dropped (nginx does not pass them on by default).
        while true {
            let view = buffer.readableBytesView
            guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
                if trailerBytes + view.count > maxHeadSize { throw .tooBig }
                return nil
            }
            let lineLength = newline - view.startIndex
            trailerBytes += lineLength + 1
            if trailerBytes > maxHeadSize { throw .tooBig }
            buffer.moveReaderIndex(to: newline + 1)
            if lineLength == 0 || (lineLength == 1 && view[view.startIndex] == UInt8(ascii: "\r")) {
                state = .done
                return .end
            }
        }
    }

    /// Consumes the line end (CRLF or LF) that must follow chunk data; false when more bytes are needed.
    private func consumeLineEnd(_ buffer: inout ByteBuffer) throws(UpstreamResponseError) -> Bool {
        let view = buffer.readableBytesView
        guard let first = view.first else { return false }
        if first == UInt8(ascii: "\n") {
            buffer.moveReaderIndex(forwardBy: 1)
            return true
        }
        guard first == UInt8(ascii: "\r") else { throw .invalid("invalid chunked response") }
        guard view.count >= 2 else { return false }
        guard view[view.startIndex + 1] == UInt8(ascii: "\n") else { throw .invalid("invalid chunked response") }
        buffer.moveReaderIndex(forwardBy: 2)
        return true
    }

    // MARK: Bytes

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 48...57: return Int(byte - 48)
        case 65...70: return Int(byte - 55)
        case 97...102: return Int(byte - 87)
        default: return nil
        }
    }

    /// RFC 9110 token bytes (header names), plus `_` which nginx allows from upstreams.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        // Letters, digits and `-` first: nearly every header name byte.
        if byte >= 0x61 && byte <= 0x7A || byte >= 0x41 && byte <= 0x5A || byte == 0x2D { return true }
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}

/// A parsed upstream response head that keeps its bytes: header lines are located, not copied
/// into strings, so the proxy can pass them to the client as bytes.
struct UpstreamResponseHead: Equatable {
    /// Where one header line's name and value lie in `bytes`.
    struct Field: Equatable {
        var nameStart: Int32
        var nameEnd: Int32
        var valueStart: Int32
        var valueEnd: Int32
    }

    var version: HTTPVersion
    var status: HTTPResponseStatus
    /// The whole head, status line to blank line (reader index at its start).
    var bytes: ByteBuffer
    var fields: [Field]
    var hasContentLength: Bool

    func name(_ field: Field) -> String {
        bytes.getString(at: bytes.readerIndex + Int(field.nameStart), length: Int(field.nameEnd - field.nameStart)) ?? ""
    }

    func value(_ field: Field) -> String {
        bytes.getString(at: bytes.readerIndex + Int(field.valueStart), length: Int(field.valueEnd - field.valueStart)) ?? ""
    }

    /// The first value of the header `lowercasedName` (names are compared only where lengths match).
    func firstValue(named lowercasedName: String) -> String? {
        let count = lowercasedName.utf8.count
        for field in fields where Int(field.nameEnd - field.nameStart) == count && name(field).lowercased() == lowercasedName {
            return value(field)
        }
        return nil
    }

    /// The headers as strings (for the 101 path, variables and tests; the usual response does without).
    var headers: HTTPHeaders {
        HTTPHeaders(fields.map { (name($0), value($0)) })
    }

    /// Calls `body` with the bytes of each field's name and value (valid only during the call).
    func withFieldBytes(_ body: (Field, UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeReadableBytes { all in
            for field in fields {
                body(field, UnsafeRawBufferPointer(rebasing: all[Int(field.nameStart)..<Int(field.nameEnd)]),
                     UnsafeRawBufferPointer(rebasing: all[Int(field.valueStart)..<Int(field.valueEnd)]))
            }
        }
    }
}

/// Lines of a head, CRLF or bare LF terminated, without their line ends.
private struct LineReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func next() -> Slice<UnsafeRawBufferPointer>? {
        guard position < bytes.count, let base = bytes.baseAddress else { return nil }
        var end = bytes.count
        if let found = memchr(base + position, 0x0A, bytes.count - position) {
            end = base.distance(to: UnsafeRawPointer(found))
        }
        let next = end + 1
        if end > position, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = bytes[position..<end]
        position = next
        return line
    }
}

/// The comma-separated tokens of a header value, trimmed of spaces and tabs, empty ones skipped.
private struct CommaTokens {
    let bytes: Slice<UnsafeRawBufferPointer>
    var position: Int

    init(_ bytes: Slice<UnsafeRawBufferPointer>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    mutating func next() -> Slice<UnsafeRawBufferPointer>? {
        while position < bytes.endIndex {
            var end = position
            while end < bytes.endIndex, bytes[end] != UInt8(ascii: ",") { end += 1 }
            var start = position
            position = end + 1
            var stop = end
            while start < stop, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") { start += 1 }
            while stop > start, bytes[stop - 1] == UInt8(ascii: " ") || bytes[stop - 1] == UInt8(ascii: "\t") { stop -= 1 }
            if stop > start { return bytes[start..<stop] }
        }
        return nil
    }
}
