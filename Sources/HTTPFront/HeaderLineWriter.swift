import NIOCore

extension ByteBuffer {
    /// Appends `name: value\r\n` with one capacity check and one copy per part: per response
    /// this replaces four `writeString` calls per header line, each with its own checks.
    public mutating func writeHeaderLine(_ name: String, _ value: String) {
        var name = name
        var value = value
        let nameCount = name.utf8.count
        let valueCount = value.utf8.count
        let total = nameCount + valueCount + 4
        writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
            let base = out.baseAddress!
            name.withUTF8 { bytes in
                if let source = bytes.baseAddress { base.copyMemory(from: source, byteCount: nameCount) }
            }
            base.storeBytes(of: UInt8(ascii: ":"), toByteOffset: nameCount, as: UInt8.self)
            base.storeBytes(of: UInt8(ascii: " "), toByteOffset: nameCount + 1, as: UInt8.self)
            value.withUTF8 { bytes in
                if let source = bytes.baseAddress { (base + nameCount + 2).copyMemory(from: source, byteCount: valueCount) }
            }
            base.storeBytes(of: UInt8(ascii: "\r"), toByteOffset: total - 2, as: UInt8.self)
            base.storeBytes(of: UInt8(ascii: "\n"), toByteOffset: total - 1, as: UInt8.self)
            return total
        }
    }
}
