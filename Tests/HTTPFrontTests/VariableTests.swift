import NIOHTTP1
import Testing
@testable import HTTPFront

@Suite struct VariableTemplateTests {
    private var variables: RequestVariables {
        var v = RequestVariables(method: "GET", requestURI: "/a%20b?x=1&Y=2", uri: "/a b", args: "x=1&Y=2",
                                 version: .http1_1, headers: ["Host": "Example.com", "X-Forwarded-For": "1.2.3.4", "Cookie": "a=1"],
                                 remoteAddress: "127.0.0.1", remotePort: "5555", serverAddress: "127.0.0.1", serverPort: "8080",
                                 serverName: "example.com", host: "example.com")
        v.captures = ["/user/42", "42"]
        v.namedCaptures = ["id": "42"]
        v.status = 200
        v.bodyBytesSent = 12
        return v
    }

    @Test func rendersVariables() throws {
        let t = try VariableTemplate("$scheme://$host:$server_port$request_uri [$uri] $args")
        #expect(t.render(variables) == "http://example.com:8080/a%20b?x=1&Y=2 [/a b] x=1&Y=2")
    }

    @Test func bracesArgumentsHeadersCaptures() throws {
        #expect(try VariableTemplate("${host}x").render(variables) == "example.comx")
        #expect(try VariableTemplate("$arg_x-$arg_y-$arg_z").render(variables) == "1-2-")
        #expect(try VariableTemplate("$http_x_forwarded_for;$http_cookie").render(variables) == "1.2.3.4;a=1")
        #expect(try VariableTemplate("/img/$1").render(variables) == "/img/42")
        #expect(try VariableTemplate("$id", namedCaptures: ["id"]).render(variables) == "42")
        #expect(try VariableTemplate("$request $status $body_bytes_sent").render(variables) == "GET /a%20b?x=1&Y=2 HTTP/1.1 200 12")
        #expect(try VariableTemplate("$remote_addr:$remote_port").render(variables) == "127.0.0.1:5555")
    }

    @Test func moduleVariables() throws {
        var v = variables
        let template = try VariableTemplate("$upstream_addr $upstream_status")
        #expect(template.render(v) == " ")
        v.moduleValues = ["upstream_addr": "127.0.0.1:8000", "upstream_status": "200"]
        #expect(template.render(v) == "127.0.0.1:8000 200")
    }

    @Test func constantsNeedNoWork() throws {
        #expect(try VariableTemplate("plain text").constantValue == "plain text")
        #expect(try VariableTemplate("$uri").constantValue == nil)
    }

    @Test func unknownVariableIsAnError() {
        #expect(throws: VariableTemplate.CompileError(message: "unknown \"nosuch\" variable")) {
            try VariableTemplate("a $nosuch b")
        }
        #expect(throws: VariableTemplate.CompileError.self) { try VariableTemplate("${host") }
    }

    @Test func accessLogEscaping() throws {
        let format = try LogFormat(name: "t", source: "$remote_user|$http_user_agent|$uri", escape: .default)
        var v = variables
        v.headers.replaceOrAdd(name: "User-Agent", value: "a\"b\\c\u{1}")
        #expect(format.render(v, now: 0) == "-|a\\x22b\\x5Cc\\x01|/a b\n")
    }
}
