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
        #expect(status(program.run(&blocked)) == 403)
        var zero = variables(uri: "/a/b", headers: [("X-Block", "0")])
        guard case .answer(let answer) = program.run(&zero) else { Issue.record("no answer"); return }
        #expect(answer.status == 200)
        #expect(answer.value?.render(zero) == "a b")
        var noMatch = variables(uri: "/top")
        #expect(status(program.run(&noMatch)) == 404)
    }

    @Test func negatedConditions() throws {
        let program = try #require(try RewriteProgram([
            directive("if", ["($request_method", "!~", "^(GET|HEAD)$)"], block: [directive("return", ["405"])]),
            directive("if", ["($host", "!=", "shop.example.com)"], block: [directive("return", ["301", "https://shop.example.com$request_uri"])]),
        ], namedCaptures: []))
        var get = variables(uri: "/")
        get.host = "shop.example.com"
        #expect(program.run(&get) == .proceed(searchAgain: false))
        var post = get
        post.method = "POST"
        #expect(status(program.run(&post)) == 405)
        var other = get
        other.host = "old.example.com"
        #expect(status(program.run(&other)) == 301)
    }

    func status(_ outcome: RewriteProgram.Outcome) -> Int? {
        if case .answer(let action) = outcome { return action.status }
        return nil
    }

    @Test func rewritesChangeTheURIOrRedirect() throws {
        let program = try #require(try RewriteProgram([
            directive("rewrite", ["^/old/(.*)$", "/new/$1", "permanent"]),
            directive("rewrite", ["^/away$", "https://example.com/x?y=1"]),
            directive("rewrite", ["^/a/(.*)$", "/b/$1"]),
            directive("rewrite", ["^/b/(.*)$", "/c/$1?from=b", "last"]),
            directive("rewrite", ["^/d$", "/e?", "break"]),
            directive("break", []),
            directive("rewrite", ["^/f$", "/never", "last"]),
        ], namedCaptures: []))
        var old = variables(uri: "/old/page")
        old.args = "q=1"
        #expect(program.run(&old) == .redirect(status: 301, url: "/new/page?q=1"))
        var away = variables(uri: "/away")
        away.args = "q=1"
        #expect(program.run(&away) == .redirect(status: 302, url: "https://example.com/x?y=1&q=1"))
        // Rewrites without a flag go on to the next; `last` stops with a new search.
        var chained = variables(uri: "/a/z")
        chained.args = "q=1"
        #expect(program.run(&chained) == .proceed(searchAgain: true))
        #expect(chained.uri == "/c/z" && chained.args == "from=b&q=1")
        // A trailing `?` drops the request's arguments; `break` keeps the location.
        var kept = variables(uri: "/d")
        kept.args = "q=1"
        #expect(program.run(&kept) == .proceed(searchAgain: false))
        #expect(kept.uri == "/e" && kept.args == "")
        // `break;` ends the level before the last rewrite.
        var stopped = variables(uri: "/f")
        #expect(program.run(&stopped) == .proceed(searchAgain: false))
        #expect(stopped.uri == "/f")
    }

    @Test func argumentsAsNginxJoinsThem() {
        #expect(RewriteProgram.split("/p", requestArgs: "a=1") == ("/p", "a=1"))
        #expect(RewriteProgram.split("/p?b=2", requestArgs: "a=1") == ("/p", "b=2&a=1"))
        #expect(RewriteProgram.split("/p?b=2?", requestArgs: "a=1") == ("/p", "b=2"))
        #expect(RewriteProgram.split("/p?", requestArgs: "a=1") == ("/p", ""))
        #expect(RewriteProgram.split("/p?b=2", requestArgs: "") == ("/p", "b=2"))
    }
}
