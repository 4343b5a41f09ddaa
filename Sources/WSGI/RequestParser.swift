import NIOCore

/// A request head as the client sent it. Text is the request's bytes decoded
/// as latin-1 (one `Character` per byte), so bytes that are not UTF-8 reach
/// the app as PEP 3333 "native strings" instead of U+FFFD.
struct ParsedHead: Sendable {
    var method: String
    var uri: String
    var versionMinor: Int
    var headers: [(name: String, value: String)]
    var keepAlive: Bool
    /// The declared body: `Content-Length` (0 when absent) or chunked.
    var contentLength: Int
    var chunked: Bool

    var isHead: Bool { method == "HEAD" }
    var hasBody: Bool { chunked || contentLength > 0 }
}

/// One piece of a request, in order: a head, its body's bytes, its end.
enum RequestPart: Sendable {
    case head(ParsedHead)
    case body(ByteBuffer)
    case end
}

/// A request the worker refuses to parse: the status to answer and why (for the log).
struct RequestParseError: Error, Equatable, CustomStringConvertible {
    var status: String
    var reason: String
    var description: String { reason }

    static func bad(_ reason: String) -> RequestParseError { .init(status: "400 Bad Request", reason: reason) }
}

/// A lean HTTP/1.x request parser over the connection's bytes: the head is
/// parsed in one pass once its blank line has arrived (no `HTTPHeaders`, no
/// per-callback state); body bytes are handed on as slices of the read buffer.
/// Strict where laxness lets requests be smuggled (conflicting lengths,
/// `Transfer-Encoding` with `Content-Length`, obsolete line folding, spaces
/// in header names): those are 400s.
struct RequestParser {
    /// Bytes a request head may take before it is refused with 431 (llhttp's limit).
    static let headLimit = 80 * 1024
    static let maxHeaders = 100

    private enum State {
        case head
        case fixedBody(remaining: Int)
        /// The head (of a request without a body) or the body is done: `.end` is next.
        case endPending
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(seen: Int)
    }

    private var state = State.head
    /// How far the search for the head's end got (not re-scanned on the next read).
    private var scanned = 0

    /// The next part from `buffer` (consuming its bytes), or nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws(RequestParseError) -> RequestPart? {
        switch state {
        case .head:
            guard let head = try parseHead(&buffer) else { return nil }
            if head.chunked {
                state = .chunkSize
            } else if head.contentLength > 0 {
                state = .fixedBody(remaining: head.contentLength)
            } else {
                state = .endPending
            }
            return .head(head)
        case .fixedBody(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: count)!
            state = count == remaining ? .endPending : .fixedBody(remaining: remaining - count)
            return .body(slice)
        case .endPending:
            state = .head
            return .end
        case .chunkSize:
            guard let line = try readLine(&buffer, limit: 1024) else { return nil }
            let size = try Self.chunkSize(line)
            state = size == 0 ? .trailers(seen: 0) : .chunkData(remaining: size)
            return try next(&buffer)
        case .chunkData(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: count)!
            state = count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - count)
            return .body(slice)
        case .chunkDataEnd:
            guard let line = try readLine(&buffer, limit: 2) else { return nil }
            guard line.isEmpty else { throw .bad("chunk data longer than its size") }
            state = .chunkSize
            return try next(&buffer)
        case .trailers(let seen):
            let before = buffer.readableBytes
            guard let line = try readLine(&buffer, limit: Self.headLimit - seen) else { return nil }
            if line.isEmpty {
                state = .head
                return .end
            }
            state = .trailers(seen: seen + before - buffer.readableBytes)
            return try next(&buffer)
        }
    }

    /// Whether a request is partly read (its head or body not complete).
    var isMidRequest: Bool {
        if case .head = state { return false }
        return true
    }

    // MARK: Lines

    /// One line without its CRLF (or bare LF), or nil when it has not all arrived.
    private func readLine(_ buffer: inout ByteBuffer, limit: Int) throws(RequestParseError) -> [UInt8]? {
        let found: Int? = buffer.withUnsafeReadableBytes { bytes in
            bytes.firstIndex(of: UInt8(ascii: "\n"))
        }
        guard let newline = found else {
            if buffer.readableBytes > limit { throw .bad("line too long") }
            return nil
        }
        if newline > limit { throw .bad("line too long") }
        var line = buffer.readBytes(length: newline + 1)!
        line.removeLast()
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        return line
    }

    private static func chunkSize(_ line: [UInt8]) throws(RequestParseError) -> Int {
        var size = 0
        var digits = 0
        for byte in line {
            if byte == UInt8(ascii: ";") { break }
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") {
                if digits > 0 { continue }
                throw .bad("bad chunk size")
            }
            guard let value = CGIEnvironment.hexValue(byte) else { throw .bad("bad chunk size") }
            digits += 1
            guard digits <= 15 else { throw .bad("chunk size too large") }
            size = size << 4 | Int(value)
        }
        guard digits > 0 else { throw .bad("bad chunk size") }
        return size
    }

    // MARK: The head

    private mutating func parseHead(_ buffer: inout ByteBuffer) throws(RequestParseError) -> ParsedHead? {
        // Empty lines before a request line are allowed (RFC 9112 §2.2).
        while let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              first == UInt8(ascii: "\r") || first == UInt8(ascii: "\n") {
            buffer.moveReaderIndex(forwardBy: 1)
            scanned = 0
        }
        let start = max(0, scanned - 3)
        let end: Int? = buffer.withUnsafeReadableBytes { bytes in
            Self.endOfHead(bytes, from: start)
        }
        guard let end else {
            scanned = buffer.readableBytes
            if buffer.readableBytes > Self.headLimit {
                throw RequestParseError(status: "431 Request Header Fields Too Large", reason: "request head over \(Self.headLimit) bytes")
            }
            return nil
        }
        scanned = 0
        if end > Self.headLimit {
            throw RequestParseError(status: "431 Request Header Fields Too Large", reason: "request head over \(Self.headLimit) bytes")
        }
        let head = try buffer.withUnsafeReadableBytes { (bytes) throws(RequestParseError) -> ParsedHead in
            try Self.parseHead(UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
        }
        buffer.moveReaderIndex(forwardBy: end)
        return head
    }

    /// The index just past the blank line ending the head.
    private static func endOfHead(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var index = start
        let count = bytes.count
        while index < count {
            guard let newline = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
            // "\n\n" or "\n\r\n"
            if newline + 1 < count, bytes[newline + 1] == UInt8(ascii: "\n") { return newline + 2 }
            if newline + 2 < count, bytes[newline + 1] == UInt8(ascii: "\r"), bytes[newline + 2] == UInt8(ascii: "\n") {
                return newline + 3
            }
            index = newline + 1
        }
        return nil
    }

    /// Splits `head` (request line, header lines, blank line) into lines.
    static func parseHead(_ head: UnsafeRawBufferPointer) throws(RequestParseError) -> ParsedHead {
        var lineStart = 0
        var parsed: ParsedHead?
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(12)
        var contentLength: Int?
        var transferEncoding: String?
        var connectionClose = false
        var connectionKeepAlive = false
        while lineStart < head.count {
            guard let newline = head[lineStart...].firstIndex(of: UInt8(ascii: "\n")) else { break }
            var lineEnd = newline
            if lineEnd > lineStart, head[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            let line = UnsafeRawBufferPointer(rebasing: head[lineStart..<lineEnd])
            lineStart = newline + 1
            if line.isEmpty { break }
            guard parsed != nil else {
                parsed = try parseRequestLine(line)
                continue
            }
            let (name, value) = try parseHeaderLine(line)
            guard headers.count < maxHeaders else { throw .bad("more than \(maxHeaders) header fields") }
            switch name.count {
            case 14 where asciiLowercasedEquals(name, "content-length"):
                let trimmed = value.trimmingSpaces
                guard !trimmed.isEmpty, trimmed.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                      trimmed.utf8.count <= 18, let length = Int(trimmed) else {
                    throw .bad("invalid Content-Length \"\(value)\"")
                }
                if let contentLength, contentLength != length { throw .bad("conflicting Content-Length headers") }
                contentLength = length
            case 17 where asciiLowercasedEquals(name, "transfer-encoding"):
                transferEncoding = transferEncoding.map { "\($0), \(value)" } ?? value
            case 10 where asciiLowercasedEquals(name, "connection"):
                for token in value.split(separator: ",") {
                    switch String(token).trimmingSpaces.lowercased() {
                    case "close": connectionClose = true
                    case "keep-alive": connectionKeepAlive = true
                    default: break
                    }
                }
            default:
                break
            }
            headers.append((name: name, value: value))
        }
        guard var result = parsed else { throw .bad("no request line") }
        result.headers = headers
        if let transferEncoding {
            guard contentLength == nil else { throw .bad("both Transfer-Encoding and Content-Length") }
            let codings = transferEncoding.split(separator: ",").map { String($0).trimmingSpaces.lowercased() }
            guard codings.last == "chunked", codings.filter({ $0 == "chunked" }).count == 1 else {
                throw .bad("unsupported Transfer-Encoding \"\(transferEncoding)\"")
            }
            result.chunked = true
        }
        result.contentLength = contentLength ?? 0
        result.keepAlive = result.versionMinor >= 1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        return result
    }

    private static func asciiLowercasedEquals(_ name: String, _ lower: StaticString) -> Bool {
        var expected = lower.utf8Start
        for byte in name.utf8 {
            let folded = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
            guard folded == expected.pointee else { return false }
            expected += 1
        }
        return true
    }

    private static func parseRequestLine(_ line: UnsafeRawBufferPointer) throws(RequestParseError) -> ParsedHead {
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")),
              let lastSpace = line.lastIndex(of: UInt8(ascii: " ")), lastSpace > firstSpace + 1 else {
            throw .bad("malformed request line")
        }
        let method = UnsafeRawBufferPointer(rebasing: line[0..<firstSpace])
        guard !method.isEmpty, method.allSatisfy(isTokenByte) else { throw .bad("invalid method") }
        let target = UnsafeRawBufferPointer(rebasing: line[(firstSpace + 1)..<lastSpace])
        guard target.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { throw .bad("invalid request target") }
        let version = UnsafeRawBufferPointer(rebasing: line[(lastSpace + 1)...])
        guard version.count == 8, version.starts(with: "HTTP/1.".utf8),
              version[7] == UInt8(ascii: "0") || version[7] == UInt8(ascii: "1") else {
            throw .bad("unsupported HTTP version")
        }
        return ParsedHead(method: String(decoding: method, as: UTF8.self), uri: latin1(target),
                          versionMinor: Int(version[7] - UInt8(ascii: "0")), headers: [],
                          keepAlive: false, contentLength: 0, chunked: false)
    }

    private static func parseHeaderLine(_ line: UnsafeRawBufferPointer) throws(RequestParseError) -> (String, String) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else {
            if let first = line.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
                throw .bad("obsolete line folding")
            }
            throw .bad("malformed header line")
        }
        let name = UnsafeRawBufferPointer(rebasing: line[0..<colon])
        guard name.allSatisfy(isTokenByte) else { throw .bad("invalid header name") }
        var start = colon + 1
        var end = line.count
        while start < end, line[start] == UInt8(ascii: " ") || line[start] == UInt8(ascii: "\t") { start += 1 }
        while end > start, line[end - 1] == UInt8(ascii: " ") || line[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[start..<end])
        guard value.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == UInt8(ascii: "\t") }) else {
            throw .bad("control character in a header value")
        }
        return (String(decoding: name, as: UTF8.self), latin1(value))
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// Bytes as latin-1 text: ASCII (nearly always) is copied as is.
    static func latin1(_ bytes: UnsafeRawBufferPointer) -> String {
        if !bytes.contains(where: { $0 >= 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        var text = ""
        text.unicodeScalars.reserveCapacity(bytes.count)
        for byte in bytes { text.unicodeScalars.append(Unicode.Scalar(byte)) }
        return text
    }
}
