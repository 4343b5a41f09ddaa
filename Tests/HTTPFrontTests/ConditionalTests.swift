import Testing
@testable import HTTPFront

@Suite struct ByteRangesTests {
    @Test func parsesRanges() {
        #expect(ByteRanges.evaluate(nil, size: 100) == .whole)
        #expect(ByteRanges.evaluate("bytes=0-9", size: 100) == .ranges([0...9]))
        #expect(ByteRanges.evaluate("bytes=90-", size: 100) == .ranges([90...99]))
        #expect(ByteRanges.evaluate("bytes=-10", size: 100) == .ranges([90...99]))
        #expect(ByteRanges.evaluate("bytes=-500", size: 100) == .ranges([0...99]))
        #expect(ByteRanges.evaluate("bytes=95-200", size: 100) == .ranges([95...99]))
        #expect(ByteRanges.evaluate("bytes=0-1, 5-6", size: 100) == .ranges([0...1, 5...6]))
    }

    @Test func unsatisfiableAndIgnored() {
        #expect(ByteRanges.evaluate("bytes=100-", size: 100) == .unsatisfiable)
        #expect(ByteRanges.evaluate("bytes=-0", size: 100) == .unsatisfiable)
        #expect(ByteRanges.evaluate("bytes=5-1", size: 100) == .whole)
        #expect(ByteRanges.evaluate("items=0-1", size: 100) == .whole)
        #expect(ByteRanges.evaluate("bytes=a-b", size: 100) == .whole)
    }
}

@Suite struct PreconditionsTests {
    let etag = "\"5f-10\""
    let modified = 1_700_000_000
    var modifiedText: String { HTTPDate.rfc1123(modified) }

    @Test func notModified() {
        #expect(Preconditions(ifNoneMatch: etag).evaluate(etag: etag, lastModified: modified) == .notModified)
        #expect(Preconditions(ifNoneMatch: "W/\(etag)").evaluate(etag: etag, lastModified: modified) == .notModified)
        #expect(Preconditions(ifNoneMatch: "\"x\", \(etag)").evaluate(etag: etag, lastModified: modified) == .notModified)
        #expect(Preconditions(ifNoneMatch: "*").evaluate(etag: etag, lastModified: modified) == .notModified)
        #expect(Preconditions(ifModifiedSince: modifiedText).evaluate(etag: etag, lastModified: modified) == .notModified)
        // If-None-Match wins over If-Modified-Since.
        #expect(Preconditions(ifNoneMatch: "\"x\"", ifModifiedSince: modifiedText).evaluate(etag: etag, lastModified: modified) == .proceed)
    }

    @Test func preconditionFailed() {
        #expect(Preconditions(ifMatch: "\"x\"").evaluate(etag: etag, lastModified: modified) == .preconditionFailed)
        #expect(Preconditions(ifMatch: "W/\(etag)").evaluate(etag: etag, lastModified: modified) == .preconditionFailed)
        #expect(Preconditions(ifMatch: etag).evaluate(etag: etag, lastModified: modified) == .proceed)
        #expect(Preconditions(ifUnmodifiedSince: HTTPDate.rfc1123(modified - 10)).evaluate(etag: etag, lastModified: modified) == .preconditionFailed)
        #expect(Preconditions(ifUnmodifiedSince: modifiedText).evaluate(etag: etag, lastModified: modified) == .proceed)
    }

    @Test func ifRange() {
        #expect(Preconditions().rangeApplies(etag: etag, lastModified: modified))
        #expect(Preconditions(ifRange: etag).rangeApplies(etag: etag, lastModified: modified))
        #expect(!Preconditions(ifRange: "\"old\"").rangeApplies(etag: etag, lastModified: modified))
        #expect(Preconditions(ifRange: modifiedText).rangeApplies(etag: etag, lastModified: modified))
        #expect(!Preconditions(ifRange: HTTPDate.rfc1123(modified - 1)).rangeApplies(etag: etag, lastModified: modified))
    }

    @Test func httpDates() {
        #expect(HTTPDate.rfc1123(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777)
        #expect(HTTPDate.parse("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777)
        #expect(HTTPDate.parse("Sun Nov  6 08:49:37 1994") == 784111777)
        #expect(HTTPDate.parse("yesterday") == nil)
    }
}
