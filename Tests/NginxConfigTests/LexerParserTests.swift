import Testing
@testable import NginxConfig

@Suite struct LexerParserTests {
    let parser = ConfigParser(configurationPrefix: "/nonexistent")

    func parse(_ text: String) throws(ConfigError) -> [Directive] {
        try parser.parse(text: text, file: "/etc/gantry/gantry.conf")
    }

    @Test func directivesBlocksAndComments() throws {
        let tree = try parse("""
        # comment
        worker_processes 2; # trailing
        http {
            server { listen 80; }
        }
        """)
        #expect(tree.map(\.name) == ["worker_processes", "http"])
        #expect(tree[0].values == ["2"])
        #expect(tree[1].block?.first?.block?.first?.values == ["80"])
        #expect(tree[1].block?.first?.block?.first?.location.line == 4)
    }

    @Test func quotesEscapesAndVariables() throws {
        let tree = try parse(#"a "x y" 'q\'s' "" ${host}x\;y "t\tn";"#)
        let args = tree[0].arguments
        #expect(args.map(\.value) == ["x y", "q's", "", "${host}x\\;y", "t\tn"])
        #expect(args.map(\.quoted) == [true, true, true, false, true])
    }

    @Test func unexpectedClosingBrace() {
        #expect(throws: ConfigError("unexpected \"}\"", at: SourceLocation(file: "/etc/gantry/gantry.conf", line: 2))) {
            try parse("a;\n}\n")
        }
    }

    @Test func endOfFileInsideDirective() {
        #expect(throws: ConfigError("unexpected end of file, expecting \";\" or \"}\"", at: SourceLocation(file: "/etc/gantry/gantry.conf", line: 3))) {
            try parse("http {\n  root /x\n")
        }
    }

    @Test func endOfFileInsideBlock() {
        #expect(throws: ConfigError("unexpected end of file, expecting \"}\"", at: SourceLocation(file: "/etc/gantry/gantry.conf", line: 2))) {
            try parse("http {\n")
        }
    }

    @Test func unexpectedSemicolon() {
        #expect(throws: ConfigError("unexpected \";\"", at: SourceLocation(file: "/etc/gantry/gantry.conf", line: 1))) {
            try parse("http { ; }")
        }
    }

    @Test func quotedStringMustBeFollowedBySpace() {
        #expect(throws: ConfigError("unexpected \"x\"", at: SourceLocation(file: "/etc/gantry/gantry.conf", line: 1))) {
            try parse("a \"b\"x;")
        }
    }
}
