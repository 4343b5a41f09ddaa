import Testing
@testable import NginxConfig

@Suite struct IfConditionTests {
    func condition(_ words: String...) throws(ConfigError) -> IfCondition {
        let directive = Directive(name: "if", arguments: words.map { ConfigArgument($0) },
                                  location: SourceLocation(file: "t.conf", line: 7), block: [])
        return try IfCondition.parse(directive)
    }

    @Test func formsNginxAccepts() throws {
        #expect(try condition("($http_x)") == .variable("$http_x"))
        #expect(try condition("(", "$http_x", ")") == .variable("$http_x"))
        #expect(try condition("($host", "=", "old.example.com)") == .equals("$host", "old.example.com", negated: false))
        #expect(try condition("($a", "!=", "$b)") == .equals("$a", "$b", negated: true))
        #expect(try condition("($a", "=", "", ")") == .equals("$a", "", negated: false))
        #expect(try condition("($request_method", "!~", "^(GET|HEAD)$)") ==
                .matches("$request_method", pattern: "^(GET|HEAD)$", caseInsensitive: false, negated: true))
        #expect(try condition("($http_user_agent", "~*", "bot)") ==
                .matches("$http_user_agent", pattern: "bot", caseInsensitive: true, negated: false))
    }

    @Test func refusalsSayWhatAndWhere() {
        func message(_ words: String...) -> String? {
            let directive = Directive(name: "if", arguments: words.map { ConfigArgument($0) },
                                      location: SourceLocation(file: "t.conf", line: 7), block: [])
            do { _ = try IfCondition.parse(directive); return nil } catch {
                #expect(error.location?.line == 7)
                return error.message
            }
        }
        #expect(message("(!-f", "$request_filename)") == #"the "!-f" condition of "if" is not supported by gantry (use "try_files")"#)
        #expect(message("($a", "<>", "b)") == #"unexpected "<>" in condition"#)
        #expect(message("$a") == #"invalid condition "$a""#)
        #expect(message("(a", "=", "b)") == #"invalid condition "a""#)
        #expect(message("($a", "~", "(unclosed)")?.hasPrefix("pcre2_compile() failed") == true)
    }
}
