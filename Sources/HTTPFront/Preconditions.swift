/// Conditional requests (RFC 9110 §13) as nginx's not-modified filter answers
/// them for static files: `If-Match`/`If-Unmodified-Since` → 412,
/// `If-None-Match`/`If-Modified-Since` → 304, `If-Range` decides whether a
/// `Range` applies.
public struct Preconditions: Sendable {
    public var ifMatch: String?
    public var ifNoneMatch: String?
    public var ifModifiedSince: String?
    public var ifUnmodifiedSince: String?
    public var ifRange: String?
    /// nginx's `if_modified_since`: `exact` (the default) answers 304 only for the exact time.
    public var modifiedSinceMode: ModifiedSinceMode = .exact

    public enum ModifiedSinceMode: Sendable { case off, exact, before }

    public init(ifMatch: String? = nil, ifNoneMatch: String? = nil, ifModifiedSince: String? = nil,
                ifUnmodifiedSince: String? = nil, ifRange: String? = nil) {
        self.ifMatch = ifMatch
        self.ifNoneMatch = ifNoneMatch
        self.ifModifiedSince = ifModifiedSince
        self.ifUnmodifiedSince = ifUnmodifiedSince
        self.ifRange = ifRange
    }

    public enum Outcome: Sendable, Equatable {
        case proceed
        case notModified
        case preconditionFailed
    }

    /// `etag` is the quoted strong tag nginx makes (`"mtime-size"` in hex).
    public func evaluate(etag: String, lastModified: Int, isGetOrHead: Bool = true) -> Outcome {
        if let ifMatch {
            if !Self.listMatches(ifMatch, etag: etag, weak: false) { return .preconditionFailed }
        } else if let ifUnmodifiedSince, let date = HTTPDate.parse(ifUnmodifiedSince) {
            if lastModified > date { return .preconditionFailed }
        }
        if let ifNoneMatch {
            if Self.listMatches(ifNoneMatch, etag: etag, weak: true) {
                return isGetOrHead ? .notModified : .preconditionFailed
            }
        } else if let ifModifiedSince, isGetOrHead, modifiedSinceMode != .off, let date = HTTPDate.parse(ifModifiedSince) {
            if date == lastModified || (modifiedSinceMode == .before && lastModified <= date) { return .notModified }
        }
        return .proceed
    }

    /// Whether a `Range` applies: no `If-Range`, or it names the current ETag or exact date.
    public func rangeApplies(etag: String, lastModified: Int) -> Bool {
        guard let ifRange = ifRange?.trimmingCharacters() else { return true }
        if ifRange.hasPrefix("\"") || ifRange.hasPrefix("W/") { return ifRange == etag }
        if let date = HTTPDate.parse(ifRange) { return date == lastModified }
        return false
    }

    static func listMatches(_ header: String, etag: String, weak: Bool) -> Bool {
        let trimmed = header.trimmingCharacters()
        if trimmed == "*" { return true }
        let bare = etag.hasPrefix("W/") ? String(etag.dropFirst(2)) : etag
        for candidate in trimmed.split(separator: ",") {
            var tag = Substring(candidate).trimmingSpaces()
            if tag.hasPrefix("W/") {
                if !weak { continue }
                tag = tag.dropFirst(2)
            }
            if tag == bare { return true }
        }
        return false
    }
}

extension String {
    func trimmingCharacters() -> String { String(Substring(self).trimmingSpaces()) }
}
