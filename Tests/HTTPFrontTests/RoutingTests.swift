import NginxConfig
import Testing
@testable import HTTPFront

@Suite struct LocationTreeTests {
    private func node(_ match: LocationMatch, _ name: String, nested: [LocationTree<String>.Node] = []) -> LocationTree<String>.Node {
        var regex: ConfigRegex?
        if case .regex(let source, let ci) = match { regex = try! ConfigRegex(source, caseInsensitive: ci) }
        var tree = LocationTree<String>()
        for n in nested { tree.add(n) }
        return .init(match: match, regex: regex, payload: name, nested: tree)
    }

    private var tree: LocationTree<String> {
        var tree = LocationTree<String>()
        tree.add(node(.prefix("/", stopsRegexSearch: false), "root"))
        tree.add(node(.exact("/"), "exact-root"))
        tree.add(node(.prefix("/images/", stopsRegexSearch: true), "images"))
        tree.add(node(.prefix("/static/", stopsRegexSearch: false), "static", nested: [
            node(.regex("\\.css$", caseInsensitive: false), "static-css"),
            node(.prefix("/static/js/", stopsRegexSearch: false), "static-js"),
        ]))
        tree.add(node(.regex("\\.(gif|jpg)$", caseInsensitive: true), "pictures"))
        tree.add(node(.regex("^/user/(\\d+)/(?<tab>\\w+)$", caseInsensitive: false), "user"))
        tree.add(node(.named("fallback"), "named"))
        return tree
    }

    @Test(arguments: [
        ("/", "exact-root"),
        ("/index.html", "root"),
        ("/images/a.gif", "images"),          // ^~ stops the regex search
        ("/docs/a.GIF", "pictures"),          // ~* case-insensitive
        ("/static/a.css", "static-css"),      // nested regex
        ("/static/js/a.js", "static-js"),     // nested prefix
        ("/static/js/a.jpg", "pictures"),     // outer regex after nested prefix
        ("/static/a.txt", "static"),
    ])
    func nginxOrder(uri: String, expected: String) {
        #expect(tree.find(uri)?.payload == expected)
    }

    @Test func capturesOfTheMatchingRegex() {
        let found = tree.find("/user/42/profile")
        #expect(found?.payload == "user")
        #expect(found?.captures?.captures == ["/user/42/profile", "42", "profile"])
        #expect(found?.captures?.named["tab"] == "profile")
    }

    @Test func namedLocations() {
        #expect(tree.namedLocation("fallback") == "named")
        #expect(tree.namedLocation("missing") == nil)
    }
}

@Suite struct ServerNameTableTests {
    private func table() throws -> ServerNameTable<String> {
        var table = ServerNameTable(defaultServer: "default")
        try table.add([.exact("example.com"), .exact("www.example.com")], server: "exact")
        try table.add([.leadingWildcard("*.example.com")], server: "star")
        try table.add([.leadingWildcard("*.deep.example.com")], server: "deep-star")
        try table.add([.leadingWildcard(".dot.org")], server: "dot")
        try table.add([.trailingWildcard("mail.*")], server: "trailing")
        try table.add([.regex("~^(?<user>\\w+)\\.users\\.net$")], server: "regex")
        return table
    }

    @Test(arguments: [
        ("example.com", "exact"),
        ("www.example.com", "exact"),             // exact beats wildcard
        ("a.example.com", "star"),
        ("a.deep.example.com", "deep-star"),      // longest wildcard wins
        ("dot.org", "dot"),                       // .dot.org matches the bare name too
        ("x.dot.org", "dot"),
        ("mail.example.net", "trailing"),
        ("bob.users.net", "regex"),
        ("nobody.test", "default"),
    ])
    func selection(host: String, expected: String) throws {
        #expect(try table().find(host: host).server == expected)
    }

    @Test func regexCaptures() throws {
        #expect(try table().find(host: "bob.users.net").captures?.named["user"] == "bob")
    }

    @Test func missingHostGoesToDefault() throws {
        #expect(try table().find(host: nil).server == "default")
    }

    @Test(arguments: [
        ("Example.COM", "example.com"),
        ("example.com:8080", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:80", "[::1]"),
    ])
    func hostNormalisation(raw: String, expected: String) {
        #expect(ServerNameTable<String>.normalizeHost(raw) == expected)
    }

    @Test(arguments: ["a/b", "a\\b", "a..b", "[::1"])
    func invalidHosts(raw: String) {
        #expect(ServerNameTable<String>.normalizeHost(raw) == nil)
    }
}
