import NIOCore

/// What `start_response` rejects, worded for the error log.
public enum ResponseHeadError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidStatus(String)
    case invalidHeaderName(String)
    case invalidHeaderValue(name: String)
    case hopByHopHeader(String)
    case invalidContentLength(String)

    public var description: String {
        switch self {
        case .invalidStatus(let status): "invalid status \(status.debugDescription) (expected \"NNN Reason\")"
        case .invalidHeaderName(let name): "invalid header name \(name.debugDescription)"
        case .invalidHeaderValue(let name): "header \(name) has a control character in its value"
        case .hopByHopHeader(let name): "\(name) is a hop-by-hop header, which a WSGI app must not set (PEP 3333)"
        case .invalidContentLength(let value): "invalid Content-Length \(value.debugDescription)"
        }
    }
}

/// A validated response head from `start_response`: raw latin-1 bytes, kept
/// already encoded (`200 OK\r\nName: value\r\n…`) in one buffer, so the
/// event loop copies one buffer per response instead of walking (and
/// retaining) arrays made on the Python thread.
public struct ResponseHead: Sendable, Equatable {
    public var statusCode: Int
    /// The status line without the protocol, then each header line, CRLF-ended.
    public private(set) var encoded: ByteBuffer
    public private(set) var headerCount = 0
    public var contentLength: Int?
    /// The app asked for `Connection: close`.
    public var wantsClose = false
    var hasDate = false
    var hasServer = false

    public init(status: [UInt8]) throws(ResponseHeadError) {
        try self.init(statusBytes: status)
    }

    public init<Bytes: Collection<UInt8>>(statusBytes status: Bytes) throws(ResponseHeadError) {
        self.statusCode = try Self.validateStatus(status)
        encoded = ByteBufferAllocator().buffer(capacity: 256)
        encoded.writeBytes(status)
        encoded.writeStaticString("\r\n")
    }

    /// `NNN` or `NNN Reason`, no control characters.
    static func validateStatus<Bytes: Collection<UInt8>>(_ status: Bytes) throws(ResponseHeadError) -> Int {
        let digits = Array(status.prefix(4))
        guard digits.count >= 3, digits[0..<3].allSatisfy({ (0x30...0x39).contains($0) }), digits[0] != 0x30,
              digits.count == 3 || digits[3] == 0x20,
              !status.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw .invalidStatus(String(decoding: status, as: UTF8.self))
        }
        return Int(digits[0] - 0x30) * 100 + Int(digits[1] - 0x30) * 10 + Int(digits[2] - 0x30)
    }

    static let hopByHop: Set<String> = [
        "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "trailer", "transfer-encoding", "upgrade",
    ]

    /// Adds one header after checking it: a token name, no CR/LF/NUL or other
    /// control characters in the value, no hop-by-hop header (`Connection: close`
    /// is honoured, as gunicorn does, by closing after the response).
    public mutating func append(name: [UInt8], value: [UInt8]) throws(ResponseHeadError) {
        var failure: ResponseHeadError?
        name.withUnsafeBytes { name in
            value.withUnsafeBytes { value in
                do throws(ResponseHeadError) { try append(name: name, value: value) } catch { failure = error }
            }
        }
        if let failure { throw failure }
    }

    public mutating func append(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(ResponseHeadError) {
        guard !name.isEmpty, name.allSatisfy(Self.isTokenCharacter) else {
            throw .invalidHeaderName(String(decoding: name, as: UTF8.self))
        }
        guard !value.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
            throw .invalidHeaderValue(name: String(decoding: name, as: UTF8.self))
        }
        // Only names of a length that can be special are looked at closely,
        // compared as bytes (no String per header).
        switch Self.special(name) {
        case nil:
            break
        case "connection":
            let tokens = String(decoding: value, as: UTF8.self).lowercased().split(separator: ",").map { $0.trimmingCharacters() }
            guard tokens.allSatisfy({ $0 == "close" || $0 == "keep-alive" }) else { throw .hopByHopHeader(String(decoding: name, as: UTF8.self)) }
            if tokens.contains("close") { wantsClose = true }
            return
        case "content-length":
            guard let length = Self.decimal(value) else {
                throw .invalidContentLength(String(decoding: value, as: UTF8.self).trimmingSpaces)
            }
            if let existing = contentLength, existing != length {
                throw .invalidContentLength(String(decoding: value, as: UTF8.self).trimmingSpaces)
            }
            if contentLength != nil { return }
            contentLength = length
        case "date": hasDate = true
        case "server": hasServer = true
        default:
            throw .hopByHopHeader(String(decoding: name, as: UTF8.self))
        }
        encoded.writeBytes(name)
        encoded.writeStaticString(": ")
        encoded.writeBytes(value)
        encoded.writeStaticString("\r\n")
        headerCount += 1
    }

    /// The names `append` treats specially (lowercased), hop-by-hop ones included; nil for the rest.
    static let specialNames = ["connection", "content-length", "date", "server"] + hopByHop.sorted()
    static let specialLengths = Set(specialNames.map(\.utf8.count))

    static func special(_ name: UnsafeRawBufferPointer) -> String? {
        guard specialLengths.contains(name.count) else { return nil }
        return specialNames.first { candidate in
            candidate.utf8.count == name.count && zip(candidate.utf8, name).allSatisfy { $0 == ($1 | 0x20) }
        }
    }

    /// A Content-Length value: digits (spaces around allowed), under 19 of them.
    static func decimal(_ value: UnsafeRawBufferPointer) -> Int? {
        var start = 0, end = value.count
        while start < end, value[start] == 0x20 || value[start] == 0x09 { start += 1 }
        while end > start, value[end - 1] == 0x20 || value[end - 1] == 0x09 { end -= 1 }
        guard end > start, end - start < 19 else { return nil }
        var result = 0
        for byte in value[start..<end] {
            guard (0x30...0x39).contains(byte) else { return nil }
            result = result * 10 + Int(byte - 0x30)
        }
        return result
    }

    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Whether this status forbids a body (1xx, 204, 304).
    public var forbidsBody: Bool { statusCode < 200 || statusCode == 204 || statusCode == 304 }
}

extension Substring {
    func trimmingCharacters() -> String { String(self).trimmingSpaces }
}

/// How a response body is delimited on the wire.
public enum ResponseFraming: Equatable, Sendable {
    /// No body at all (HEAD, 204, 304, 1xx).
    case noBody
    case contentLength(Int)
    case chunked
    /// HTTP/1.0 without a length: the body ends when the connection closes.
    case untilClose
}

/// The pure decisions for a response: framing and whether to keep the connection.
public struct ResponsePlan: Equatable, Sendable {
    public var framing: ResponseFraming
    public var keepAlive: Bool

    public init(head: ResponseHead, isHead: Bool, httpMinorVersion: Int, requestKeepAlive: Bool, draining: Bool) {
        var keepAlive = requestKeepAlive && !head.wantsClose && !draining
        if isHead || head.forbidsBody {
            framing = .noBody
        } else if let length = head.contentLength {
            framing = .contentLength(length)
        } else if httpMinorVersion >= 1 {
            framing = .chunked
        } else {
            framing = .untilClose
            keepAlive = false
        }
        self.keepAlive = keepAlive
    }

    /// Writes the status line and headers (with `Date`, `Server`, framing and `Connection`).
    public func encode(_ head: ResponseHead, httpMinorVersion: Int, date: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(httpMinorVersion >= 1 ? "HTTP/1.1 " : "HTTP/1.0 ")
        buffer.writeImmutableBuffer(head.encoded)
        if !head.hasServer { buffer.writeStaticString("Server: gantry\r\n") }
        if !head.hasDate {
            buffer.writeStaticString("Date: ")
            buffer.writeString(date)
            buffer.writeStaticString("\r\n")
        }
        if case .chunked = framing { buffer.writeStaticString("Transfer-Encoding: chunked\r\n") }
        if !keepAlive {
            buffer.writeStaticString("Connection: close\r\n")
        } else if httpMinorVersion == 0 {
            buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
    }
}
