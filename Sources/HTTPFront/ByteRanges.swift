/// `Range: bytes=…` parsing as nginx's range filter does it.
public enum ByteRanges {
    public enum Outcome: Sendable, Equatable {
        /// Serve the whole file (no Range, not `bytes=`, or a syntax error nginx ignores).
        case whole
        /// Serve these inclusive ranges (206).
        case ranges([ClosedRange<Int>])
        /// 416 with `Content-Range: bytes */size`.
        case unsatisfiable
    }

    /// nginx's `max_ranges` is unlimited by default; too many ranges fall back to the whole file.
    public static func evaluate(_ header: String?, size: Int, maxRanges: Int = Int.max) -> Outcome {
        guard let header else { return .whole }
        let trimmed = header.drop { $0 == " " }
        guard trimmed.lowercased().hasPrefix("bytes=") else { return .whole }
        let spec = trimmed.dropFirst(6)
        var ranges: [ClosedRange<Int>] = []
        var sawAny = false
        for part in spec.split(separator: ",", omittingEmptySubsequences: false) {
            let p = part.trimmingSpaces()
            guard let dash = p.firstIndex(of: "-") else { return .whole }
            let startText = p[..<dash].trimmingSpaces()
            let endText = p[p.index(after: dash)...].trimmingSpaces()
            sawAny = true
            if startText.isEmpty {
                // Suffix range: the last N bytes.
                guard let suffix = Int(endText), endText.allSatisfy(\.isASCIIDigit) else { return .whole }
                if suffix == 0 { continue }
                if size == 0 { continue }
                ranges.append(max(0, size - suffix)...(size - 1))
            } else {
                guard startText.allSatisfy(\.isASCIIDigit), let start = Int(startText) else { return .whole }
                var end = size - 1
                if !endText.isEmpty {
                    guard endText.allSatisfy(\.isASCIIDigit), let parsed = Int(endText) else { return .whole }
                    if parsed < start { return .whole }
                    end = min(parsed, size - 1)
                }
                if start >= size { continue }
                ranges.append(start...end)
            }
        }
        guard sawAny else { return .whole }
        if ranges.isEmpty { return .unsatisfiable }
        if ranges.count > maxRanges { return .whole }
        return .ranges(ranges)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return s
    }
}

extension Character {
    var isASCIIDigit: Bool { self >= "0" && self <= "9" }
}
