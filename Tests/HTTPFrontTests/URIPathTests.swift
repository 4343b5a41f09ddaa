import Testing
@testable import HTTPFront

@Suite struct URIPathTests {
    @Test(arguments: [
        ("/", "/"),
        ("/a/b", "/a/b"),
        ("//a///b", "/a/b"),
        ("/a/./b/", "/a/b/"),
        ("/a/b/..", "/a/"),
        ("/a/b/../c", "/a/c"),
        ("/a/%2e%2e/c", "/c"),
        ("/%41%62c", "/Abc"),
        ("/a%2fb", "/a/b"),
        ("/dir/.", "/dir/"),
        ("/..a/b..", "/..a/b.."),
        ("http://host/x/../y", "/y"),
    ])
    func normalizes(raw: String, expected: String) throws {
        #expect(try URIPath.normalize(Substring(raw)) == expected)
    }

    @Test(arguments: ["/..", "/../a", "/a/../..", "/%2e%2e/", "/a%00b", "/%zz", "/%4", "relative", "*"])
    func refuses(raw: String) {
        #expect(throws: URIPath.Failure.badRequest) { try URIPath.normalize(Substring(raw)) }
    }

    @Test func splitsQuery() {
        let parts = URIPath.split(target: "/a/b?x=1&y=2")
        #expect(parts.path == "/a/b")
        #expect(parts.query == "x=1&y=2")
        #expect(URIPath.split(target: "/a").query == "")
    }

    @Test func escapesForLocationHeader() {
        #expect(URIPath.escape("/a b/ü") == "/a%20b/%C3%BC")
    }
}
