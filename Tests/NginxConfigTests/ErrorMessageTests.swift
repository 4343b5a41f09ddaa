import Testing
@testable import NginxConfig

/// Every configuration error Gantry reports, with nginx's exact wording and line
/// (each checked against `nginx -t` 1.22 by hand; the e2e corpus tests compare verdicts).
@Suite struct ErrorMessageTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var config: String
        var message: String
        var line: Int?
        var testDescription: String { message }

        init(_ config: String, _ message: String, line: Int?) {
            self.config = config
            self.message = message
            self.line = line
        }
    }

    static let events = "events {}\n"

    static let cases: [Case] = [
        // ngx_conf_handler
        Case(events + "foo bar;\n", #"unknown directive "foo""#, line: 2),
        Case(events + "http {\n  alias /x;\n}\n", #""alias" directive is not allowed here"#, line: 3),
        Case(events + "http {\n  server {\n    listen;\n  }\n}\n", #"invalid number of arguments in "listen" directive"#, line: 4),
        Case(events + "http\n;\n", #"directive "http" has no opening "{""#, line: 3),
        Case(events + "http {\n  root /x {\n  }\n}\n", #"directive "root" is not terminated by ";""#, line: 3),
        Case(events + "http {\n  proxy_cache one;\n}\n", #""proxy_cache" is not supported by gantry"#, line: 3),
        Case(events + "http {\n  server {\n    location / {\n      auth_basic \"area\";\n    }\n  }\n}\n", #""auth_basic" is not supported by gantry"#, line: 5),
        // duplicates
        Case(events + "http {\n  root /a;\n  root /b;\n}\n", #""root" directive is duplicate"#, line: 4),
        Case(events + "http {}\nhttp {}\n", #""http" directive is duplicate"#, line: 3),
        Case(events + "events {}\n", #""events" directive is duplicate"#, line: 2),
        Case(events + "http {\n  server {\n    location / {\n      root /a;\n      alias /b;\n    }\n  }\n}\n",
             #""alias" directive is duplicate, "root" directive was specified earlier"#, line: 6),
        Case(events + "http {\n  server {\n    location / {\n      alias /a;\n      root /b;\n    }\n  }\n}\n",
             #""root" directive is duplicate, "alias" directive was specified earlier"#, line: 6),
        Case(events + "http {\n  server {\n    location /x {}\n    location /x {}\n  }\n}\n", #"duplicate location "/x""#, line: 5),
        Case(events + "http {\n  server {\n    location ^~ /x {}\n    location /x {}\n  }\n}\n", #"duplicate location "/x""#, line: 5),
        Case(events + "http {\n  server {\n    location = /x {}\n    location =/x {}\n  }\n}\n", #"duplicate location "/x""#, line: 5),
        // values
        Case(events + "http {\n  sendfile maybe;\n}\n", #"invalid value "maybe" in "sendfile" directive, it must be "on" or "off""#, line: 3),
        Case(events + "http {\n  client_max_body_size 10x;\n}\n", #""client_max_body_size" directive invalid value"#, line: 3),
        Case(events + "http {\n  keepalive_timeout 1q;\n}\n", #""keepalive_timeout" directive invalid value"#, line: 3),
        Case(events + "http {\n  proxy_read_timeout 1m1h;\n}\n", #""proxy_read_timeout" directive invalid value"#, line: 3),
        Case(events + "http {\n  keepalive_requests many;\n}\n", #""keepalive_requests" directive invalid number"#, line: 3),
        Case(events + "http {\n  gzip_static maybe;\n}\n", #"invalid value "maybe""#, line: 3),
        Case(events + "http {\n  proxy_next_upstream error bogus;\n}\n", #"invalid value "bogus""#, line: 3),
        Case(events + "http {\n  gzip_comp_level 10;\n}\n", "value must be between 1 and 9", line: 3),
        Case(events + "http {\n  expires soon;\n}\n", #""expires" directive invalid value"#, line: 3),
        Case(events + "http {\n  expires @25h;\n}\n", #""expires" directive daily time value must be less than 24 hours"#, line: 3),
        Case(events + "http {\n  disable_symlinks sometimes;\n}\n", #"invalid parameter "sometimes""#, line: 3),
        Case("events {\n  use kqueue2;\n}\n", #"invalid event type "kqueue2""#, line: 2),
        // listen
        Case(events + "http {\n  server {\n    listen foo.invalid:80;\n  }\n}\n", #"host not found in "foo.invalid:80" of the "listen" directive"#, line: 4),
        Case(events + "http {\n  server {\n    listen 70000;\n  }\n}\n", #"invalid port in "70000" of the "listen" directive"#, line: 4),
        Case(events + "http {\n  server {\n    listen 127.0.0.1:0;\n  }\n}\n", #"invalid port in "127.0.0.1:0" of the "listen" directive"#, line: 4),
        Case(events + "http {\n  server {\n    listen [::1;\n  }\n}\n", #"invalid host in "[::1" of the "listen" directive"#, line: 4),
        Case(events + "http {\n  server {\n    listen unix:;\n  }\n}\n", #"no path in the unix domain socket in "unix:" of the "listen" directive"#, line: 4),
        Case(events + "http {\n  server {\n    listen 80 fast;\n  }\n}\n", #"invalid parameter "fast""#, line: 4),
        Case(events + "http {\n  server {\n    listen 443 http2;\n  }\n}\n", #"the "http2" parameter of the "listen" directive is not supported by gantry"#, line: 4),
        Case(events + "http {\n  server { listen 80 default_server; }\n  server { listen 80 default_server; }\n}\n",
             "a duplicate default server for 0.0.0.0:80", line: 4),
        Case(events + "http {\n  server {\n    listen 80;\n    listen 0.0.0.0:80;\n  }\n}\n", "a duplicate listen 0.0.0.0:80", line: 5),
        Case(events + "http {\n  server { listen 80 backlog=10; }\n  server { listen 80 backlog=20; }\n}\n", "duplicate listen options for 0.0.0.0:80", line: 4),
        // server_name
        Case(events + "http {\n  server {\n    server_name *example.com;\n  }\n}\n", #"server name "*example.com" is invalid"#, line: 4),
        Case(events + "http {\n  server {\n    server_name ~;\n  }\n}\n", #"empty regex in server name "~""#, line: 4),
        // location
        Case(events + "http {\n  server {\n    location /a {\n      location /b {}\n    }\n  }\n}\n", #"location "/b" is outside location "/a""#, line: 5),
        Case(events + "http {\n  server {\n    location = /a {\n      location /a/b {}\n    }\n  }\n}\n", #"location "/a/b" cannot be inside the exact location "/a""#, line: 5),
        Case(events + "http {\n  server {\n    location @a {\n      location /a {}\n    }\n  }\n}\n", #"location "/a" cannot be inside the named location "@a""#, line: 5),
        Case(events + "http {\n  server {\n    location /a {\n      location @b {}\n    }\n  }\n}\n", #"named location "@b" can be on the server level only"#, line: 5),
        Case(events + "http {\n  server {\n    location xx /a {}\n  }\n}\n", #"invalid location modifier "xx""#, line: 4),
        // syntax (the lexer and parser)
        Case(events + "http {\n}\n}\n", #"unexpected "}""#, line: 4),
        Case(events + "http {\n  root /x\n", #"unexpected end of file, expecting ";" or "}""#, line: 4),
        Case(events + "http {\n", #"unexpected end of file, expecting "}""#, line: 3),
        Case(events + "http { ; }\n", #"unexpected ";""#, line: 2),
        Case(events + "include /nonexistent/gantry-test.conf;\n", #"open() "/nonexistent/gantry-test.conf" failed (2: No such file or directory)"#, line: 2),
        // upstream and proxy_pass (the rest of their checks are the ReverseProxy module's)
        Case(events + "http {\n  upstream u {\n  }\n}\n", "no servers are inside upstream", line: 4),
        Case(events + "http {\n  upstream u { server 127.0.0.1:1; }\n  upstream u { server 127.0.0.1:2; }\n}\n", #"duplicate upstream "u""#, line: 4),
        Case(events + "http {\n  server {\n    location / {\n      proxy_pass ftp://x;\n    }\n  }\n}\n", "invalid URL prefix", line: 5),
        Case(events + "http {\n  upstream u { server 127.0.0.1; }\n  server {\n    location / {\n      proxy_pass http://u:81;\n    }\n  }\n}\n",
             #"upstream "u" may not have port 81"#, line: 6),
        Case(events + "http {\n  app_pool p {\n    workers 2;\n  }\n}\n", #"no "wsgi" directive in app_pool "p""#, line: 5),
        Case(events + "http {\n  app_pool p {\n    wsgi app:app;\n    socket_mode 999;\n  }\n}\n", #"invalid value "999" in "socket_mode" directive, it must be an octal mode such as 0660"#, line: 5),
        Case(events + "http {\n  app_pool p {\n    wsgi app:app;\n    env DEBUG;\n  }\n}\n", #"invalid value "DEBUG" in "env" directive, it must be NAME=VALUE"#, line: 5),
        // whole configuration
        Case("http {}\n", #"no "events" section in configuration"#, line: nil),
    ]

    @Test(arguments: cases)
    func reportsNginxMessageAtLine(_ testCase: Case) throws {
        let directory = TempConfigDirectory()
        let file = directory.write("gantry.conf", testCase.config)
        let expected = ConfigError(testCase.message, at: testCase.line.map { SourceLocation(file: file, line: $0) })
        #expect(throws: expected) { _ = try directory.load() }
    }

    @Test func errorBeforeSyntaxErrorIsReportedFirst() throws {
        let directory = TempConfigDirectory()
        let file = directory.write("gantry.conf", Self.events + "http {\n  server { foo; }\n  include /nonexistent;\n")
        #expect(throws: ConfigError(#"unknown directive "foo""#, at: SourceLocation(file: file, line: 3))) {
            _ = try directory.load()
        }
    }

    @Test func errorInIncludedFileCarriesThatFile() throws {
        let directory = TempConfigDirectory()
        directory.write("gantry.conf", Self.events + "http {\n  include sites/*.conf;\n}\n")
        let site = directory.write("sites/a.conf", "server {\n  listen 80;\n  bogus on;\n}\n")
        #expect(throws: ConfigError(#"unknown directive "bogus""#, at: SourceLocation(file: site, line: 3))) {
            _ = try directory.load()
        }
    }

    @Test func commandLineDirectives() throws {
        let directory = TempConfigDirectory()
        let file = directory.write("gantry.conf", Self.events + "daemon on;\n")
        #expect(throws: ConfigError(#"unknown directive "foo""#, at: .commandLine)) { _ = try directory.load(globals: "foo;") }
        #expect(throws: ConfigError(#"unexpected end of parameter, expecting ";""#, at: .commandLine)) { _ = try directory.load(globals: "daemon off") }
        #expect(throws: ConfigError("block directives are not supported in -g option", at: .commandLine)) { _ = try directory.load(globals: "http {}") }
        // -g comes first, so the file's own `daemon` is the duplicate.
        #expect(throws: ConfigError(#""daemon" directive is duplicate"#, at: SourceLocation(file: file, line: 2))) {
            _ = try directory.load(globals: "daemon off;")
        }
        #expect(ConfigError("x", at: .commandLine).description == "x in command line")
    }

    @Test func errorDescriptionReadsAsNginx() {
        let error = ConfigError(#"unknown directive "foo""#, at: SourceLocation(file: "/etc/gantry/gantry.conf", line: 12))
        #expect(error.description == #"unknown directive "foo" in /etc/gantry/gantry.conf:12"#)
    }
}
