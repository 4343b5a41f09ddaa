/// nginx's URI normalisation (`ngx_http_parse_complex_uri`): percent-decode,
/// merge `//`, resolve `.` and `..`. The result is the `$uri` every later
/// phase sees, so file paths are built only from a normalised URI.
public enum URIPath {
    public enum Failure: Error, Sendable, Equatable {
        /// Not starting with `/`, a bad `%` escape, a NUL byte, or `..` climbing above `/` (nginx: 400).
        case badRequest
    }

    /// Splits a request target into the raw path and the query (without `?`).
    public static func split(target: String) -> (path: Substring, query: Substring) {
        // Searched as bytes: a Character search walks grapheme clusters.
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            return (target[..<q], target[target.utf8.index(after: q)...])
        }
        return (target[...], "")
    }

    /// Decodes and normalises a raw path. `mergeSlashes` is nginx's `merge_slashes`.
    public static func normalize(_ raw: Substring, mergeSlashes: Bool = true) throws(Failure) -> String {
        if isAlreadyNormal(raw) { return String(raw) }
        var bytes = Array(raw.utf8)
        // An absolute-form target (`GET http://host/path`) carries the path after the authority.
        if bytes.first != UInt8(ascii: "/") {
            if let range = raw.range(of: "://") {
                let afterScheme = raw[range.upperBound...]
                if let slash = afterScheme.firstIndex(of: "/") {
                    bytes = Array(afterScheme[slash...].utf8)
                } else {
                    bytes = [UInt8(ascii: "/")]
                }
            } else {
                throw .badRequest
            }
        }
        // Percent-decoding first, so `%2e%2e` and `%2f` are seen as `..` and `/`.
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) else {
                    throw .badRequest
                }
                decoded.append(hi << 4 | lo)
                i += 3
            } else {
                decoded.append(b)
                i += 1
            }
        }
        if decoded.contains(0) { throw .badRequest }
        // Segment resolution.
        var segments: [ArraySlice<UInt8>] = []
        var trailingSlash = false
        var start = 1
        var index = 1
        let slash = UInt8(ascii: "/")
        let dot = UInt8(ascii: ".")
        while index <= decoded.count {
            if index == decoded.count || decoded[index] == slash {
                let segment = decoded[start..<index]
                let atEnd = index == decoded.count
                if segment.isEmpty {
                    if !mergeSlashes && !atEnd { segments.append(segment) }
                    if atEnd { trailingSlash = true }
                } else if segment.elementsEqual([dot]) {
                    trailingSlash = true
                } else if segment.elementsEqual([dot, dot]) {
                    guard !segments.isEmpty else { throw .badRequest }
                    segments.removeLast()
                    trailingSlash = true
                } else {
                    segments.append(segment)
                    trailingSlash = false
                }
                start = index + 1
            }
            index += 1
        }
        var out: [UInt8] = [slash]
        for (n, segment) in segments.enumerated() {
            if n > 0 { out.append(slash) }
            out.append(contentsOf: segment)
        }
        if trailingSlash && !segments.isEmpty { out.append(slash) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The common case: starts with `/`, no `%`, no `//`, no `/.`, no NUL — nothing to do.
    static func isAlreadyNormal(_ raw: Substring) -> Bool {
        var previous: UInt8 = 0
        var first = true
        for b in raw.utf8 {
            if first {
                guard b == UInt8(ascii: "/") else { return false }
                first = false
            } else if previous == UInt8(ascii: "/") && (b == UInt8(ascii: "/") || b == UInt8(ascii: ".")) {
                return false
            }
            if b == UInt8(ascii: "%") || b == 0 { return false }
            previous = b
        }
        return !first
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return b - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Percent-encodes what must not appear raw in a `Location` header or a listing.
    public static func escape(_ path: String) -> String {
        var out = ""
        for b in path.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "/"), UInt8(ascii: "-"),
                 UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"), UInt8(ascii: "!"),
                 UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("),
                 UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","),
                 UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(b >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(b & 0xF)]))
            }
        }
        return out
    }
}
