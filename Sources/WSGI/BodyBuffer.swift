import NIOCore

/// The received-but-unread part of a request body and the read rules of
/// `wsgi.input` (`read(n)`, `read()`, `readline(limit)`), without locking or I/O.
public struct BodyBuffer: Sendable {
    var chunks = CircularBuffer<ByteBuffer>()
    public private(set) var count = 0
    /// The whole body has arrived.
    public var isComplete = false

    public init() {}

    public mutating func append(_ buffer: ByteBuffer) {
        guard buffer.readableBytes > 0 else { return }
        count += buffer.readableBytes
        chunks.append(buffer)
    }

    /// Whether `read(limit)` (nil: to the end) can answer now without waiting.
    public func canAnswerRead(_ limit: Int?) -> Bool {
        isComplete || (limit.map { count >= $0 } ?? false)
    }

    /// Whether `readline(limit)` can answer now without waiting.
    public func canAnswerReadline(_ limit: Int?) -> Bool {
        if isComplete { return true }
        if let limit, count >= limit { return true }
        return chunks.contains { $0.readableBytesView.contains(UInt8(ascii: "\n")) }
    }

    /// Takes up to `limit` bytes (all when nil).
    public mutating func take(_ limit: Int?) -> [UInt8] {
        var wanted = min(limit ?? count, count)
        var result: [UInt8] = []
        result.reserveCapacity(wanted)
        while wanted > 0, var first = chunks.first {
            let part = min(wanted, first.readableBytes)
            result.append(contentsOf: first.readBytes(length: part)!)
            wanted -= part
            count -= part
            if first.readableBytes == 0 { chunks.removeFirst() } else { chunks[chunks.startIndex] = first }
        }
        return result
    }

    /// Takes through the first newline, at most `limit` bytes (the rest when no newline).
    public mutating func takeLine(_ limit: Int?) -> [UInt8] {
        var length = 0
        var found = false
        outer: for chunk in chunks {
            for byte in chunk.readableBytesView {
                length += 1
                if byte == UInt8(ascii: "\n") { found = true; break outer }
                if let limit, length >= limit { break outer }
            }
        }
        if !found, let limit { length = min(length, limit) }
        return take(length)
    }
}
