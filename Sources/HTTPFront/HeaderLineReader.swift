import NIOCore

/// Header lines already serialised (`Name: value\r\n` each, as a module such as the proxy hands
/// them over) read back as name/value pairs — only where the front must look into them (gzip's
/// rules), not on the usual path.
enum HeaderLineReader {
    static func fields(of lines: ByteBuffer) -> [(String, String)] {
        guard let text = lines.getString(at: lines.readerIndex, length: lines.readableBytes) else { return [] }
        var fields: [(String, String)] = []
        for line in text.split(separator: "\r\n", omittingEmptySubsequences: true) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            fields.append((name, String(value)))
        }
        return fields
    }
}
