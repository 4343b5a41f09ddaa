import Testing
@testable import NginxConfig

@Suite struct MimeTypesTests {
    @Test func builtinTextEqualsTheShippedFile() throws {
        let shipped = try #require(readFile(repositoryRoot + "/nginx-compat/mime.types"))
        #expect(BuiltinMimeTypes.text == shipped, "run nginx-compat/generate-builtin-mime-types")
    }

    @Test func includeMimeTypesWorksWithNoFileOnDisk() throws {
        let directory = TempConfigDirectory()
        directory.write("gantry.conf", "events {}\nhttp {\n  include mime.types;\n  server { listen 80; location / {} }\n}\n")
        let configuration = try directory.load()
        let location = try #require(configuration.http?.servers.first?.locations.first)
        let types = MimeTypeMap(scope: location.scope)
        #expect(types.type(forExtension: "html") == "text/html")
        #expect(types.type(forExtension: "CSS") == "text/css")
        #expect(types.type(forPath: "/static/app.js") == "application/javascript")
        #expect(types.type(forPath: "/a.b/noext") == nil)
        #expect(types.type(forPath: "/trailingdot.") == nil)
        #expect(types.type(forExtension: "woff2") == "font/woff2")
        #expect(configuration.files.map(\.path) == [directory.path + "/gantry.conf", directory.path + "/mime.types"])
        #expect(location.scope.defaultType == "text/plain")
    }

    @Test func aFileOnDiskWinsOverTheBuiltinOne() throws {
        let directory = TempConfigDirectory()
        directory.write("gantry.conf", "events {}\nhttp {\n  include mime.types;\n}\n")
        directory.write("mime.types", "types {\n  text/x-mine html;\n}\n")
        let http = try #require(try directory.load().http)
        #expect(MimeTypeMap(scope: http.scope).type(forExtension: "html") == "text/x-mine")
    }

    @Test func innerTypesReplaceOuterOnes() throws {
        let directory = TempConfigDirectory()
        directory.write("gantry.conf", """
        events {}
        http {
            types { text/html html; text/css css; }
            default_type application/octet-stream;
            server {
                listen 80;
                location /plain/ { types { text/plain html; } }
                location / {}
            }
        }
        """)
        let server = try #require(try directory.load().http?.servers.first)
        let plain = MimeTypeMap(scope: server.locations[0].scope)
        #expect(plain.type(forExtension: "html") == "text/plain")
        #expect(plain.type(forExtension: "css") == nil)
        #expect(MimeTypeMap(scope: server.locations[1].scope).type(forExtension: "css") == "text/css")
        #expect(server.locations[1].scope.defaultType == "application/octet-stream")
    }

    @Test func noTypesAnywhereGivesNginxDefaults() throws {
        let directory = TempConfigDirectory()
        directory.write("gantry.conf", "events {}\nhttp { server { listen 80; } }\n")
        let server = try #require(try directory.load().http?.servers.first)
        #expect(MimeTypeMap(scope: server.scope) == .nginxDefault)
    }
}
