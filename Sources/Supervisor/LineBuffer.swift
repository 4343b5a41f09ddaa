/// Splits a byte stream into `\n`-terminated lines (the control channel's framing).
/// A line longer than `maximumLineLength` is dropped, so a confused worker cannot grow the master's memory.
public struct LineBuffer: Sendable {
    private var pending: [UInt8] = []
    private var discarding = false
    public let maximumLineLength: Int

    public init(maximumLineLength: Int = 4096) {
        self.maximumLineLength = maximumLineLength
    }

    /// Appends `bytes` and returns the complete lines they finish (without `\n` or a trailing `\r`).
    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) -> [String] where Bytes.Element == UInt8 {
        var lines: [String] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if !discarding {
                    if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
                    lines.append(String(decoding: pending, as: UTF8.self))
                }
                pending.removeAll(keepingCapacity: true)
                discarding = false
            } else if !discarding {
                pending.append(byte)
                if pending.count > maximumLineLength {
                    pending.removeAll()
                    discarding = true
                }
            }
        }
        return lines
    }
}
