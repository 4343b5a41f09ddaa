import Testing
@testable import NginxConfig

@Suite struct IncludeTests {
    @Test func globsExpandInOrderAndMayMatchNothing() throws {
        let directory = TempConfigDirectory()
        directory.write("gantry.conf", "events {}\nhttp {\n  include sites/*.conf;\n  include none/*.conf;\n}\n")
        directory.write("sites/b.conf", "server { listen 8002; }\n")
        directory.write("sites/a.conf", "server { listen 8001; }\n")
        let servers = try #require(try directory.load().http?.servers)
        #expect(servers.map { $0.listens[0].endpoint } == [.tcp(host: nil, port: 8001), .tcp(host: nil, port: 8002)])
        #expect(servers[0].location == SourceLocation(file: directory.path + "/sites/a.conf", line: 1))
    }

    @Test func relativeIncludeIsFoundBesideTheIncludingFileThenInThePrefix() throws {
        let directory = TempConfigDirectory()
        directory.write("gantry.conf", "events {}\nhttp {\n  include sites/app.conf;\n}\n")
        directory.write("sites/app.conf", "server {\n  listen 80;\n  include snippet.conf;\n  include common.conf;\n}\n")
        directory.write("sites/snippet.conf", "server_name beside;\n")
        directory.write("common.conf", "root /srv/prefix;\n")
        let server = try #require(try directory.load().http?.servers.first)
        #expect(server.names == [.exact("beside")])
        #expect(server.scope.own("root")?.location.file == directory.path + "/common.conf")
    }

    @Test func missingIncludeNamesThePathNginxWouldOpen() throws {
        let directory = TempConfigDirectory()
        let file = directory.write("gantry.conf", "events {}\ninclude missing.conf;\n")
        #expect(throws: ConfigError(#"open() "\#(directory.path)/missing.conf" failed (2: No such file or directory)"#, at: SourceLocation(file: file, line: 2))) {
            _ = try directory.load()
        }
    }

    @Test func everyFileReadIsRecordedOnceForDump() throws {
        let directory = TempConfigDirectory()
        directory.write("gantry.conf", "events {}\nhttp {\n  include a.conf;\n  include a.conf;\n}\n")
        directory.write("a.conf", "# nothing\n")
        let configuration = try directory.load()
        #expect(configuration.files.map(\.path) == [directory.path + "/gantry.conf", directory.path + "/a.conf"])
        #expect(configuration.files[1].text == "# nothing\n")
    }
}
