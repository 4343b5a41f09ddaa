import NIOHTTP1
import Testing
@testable import HTTPFront
@testable import NginxConfig

@Suite struct RewriteProgramTests {
    let here = SourceLocation(file: "t.conf", line: 1)

    func directive(_ name: String, _ words: [String], block: [Directive]? = nil) -> Directive {
        Directive(name: name, arguments: words.map { ConfigArgument($0) }, location: here, block: block)
    }

    func variables(uri: String, headers: [(String, String)] = []) -> RequestVariables {
        RequestVariables(method: "GET", requestURI: uri, uri: uri, args: "", version: .http1_1, headers: HTTPHeaders(headers))
    }

    @Test func aLevelWithoutReturnOrIfHasNoProgram() throws {
        #expect(try RewriteProgram([directive("root", ["/srv"])], namedCaptures: []) == nil)
    }

    @Test func stepsRunInOrderAndTheFirstReturnReachedAnswers() throws {
        let program = try #require(try RewriteProgram([
            directive("if", ["($http_x_block)"], block: [directive("return", ["403"])]),
            directive("if", ["($uri", "~", "^/(\\w+)/(?<rest>.*)$)"], block: [directive("return", ["200", "$1 $rest"])]),
            directive("return", ["404"]),
        ], namedCaptures: []))
        var blocked = variables(uri: "/a/b", headers: [("X-Block", "yes")])
        #expect(program.run(&blocked)?.status == 403)
        var zero = variables(uri: "/a/b", headers: [("X-Block", "0")])
        let answer = try #require(program.run(&zero))
        #expect(answer.status == 200)
        #expect(answer.value?.render(zero) == "a b")
        var noMatch = variables(uri: "/top")
        #expect(program.run(&noMatch)?.status == 404)
    }

    @Test func negatedConditions() throws {
        let program = try #require(try RewriteProgram([
            directive("if", ["($request_method", "!~", "^(GET|HEAD)$)"], block: [directive("return", ["405"])]),
            directive("if", ["($host", "!=", "shop.example.com)"], block: [directive("return", ["301", "https://shop.example.com$request_uri"])]),
        ], namedCaptures: []))
        var get = variables(uri: "/")
        get.host = "shop.example.com"
        #expect(program.run(&get) == nil)
        var post = get
        post.method = "POST"
        #expect(program.run(&post)?.status == 405)
        var other = get
        other.host = "old.example.com"
        #expect(program.run(&other)?.status == 301)
    }
}
