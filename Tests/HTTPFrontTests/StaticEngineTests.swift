import Testing
@testable import HTTPFront

@Suite struct PathContainmentTests {
    @Test func insideChecks() {
        #expect(RequestEngine.isInside("/srv/static/a.css", base: "/srv/static"))
        #expect(RequestEngine.isInside("/srv/static", base: "/srv/static"))
        #expect(!RequestEngine.isInside("/srv/static/../secret", base: "/srv/static"))   // nginx's alias trap
        #expect(!RequestEngine.isInside("/srv/static../secret", base: "/srv/static"))
        #expect(!RequestEngine.isInside("/srv/staticx", base: "/srv/static"))
        #expect(!RequestEngine.isInside("/srv/static/a\u{0}b", base: "/srv/static"))
    }

    @Test func regexAliasBase() throws {
        #expect(RequestEngine.literalDirectory(of: try VariableTemplate("/srv/img/$1")) == "/srv/img")
        #expect(RequestEngine.literalDirectory(of: try VariableTemplate("/srv/img$1")) == "/srv")
        #expect(RequestEngine.literalDirectory(of: try VariableTemplate("$1")) == "/")
    }
}
