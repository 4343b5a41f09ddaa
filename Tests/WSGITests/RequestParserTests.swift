import NIOCore
import Testing
@testable import WSGI

/// Feeds `chunks` one after another (as reads would), collecting every part.
private func parse(_ chunks: [[UInt8]]) throws(RequestParseError) -> [RequestPart] {
    var parser = RequestParser()
    var buffer = ByteBuffer()
    var parts: [RequestPart] = []
    for chunk in chunks {
        buffer.writeBytes(chunk)
        while let part = try parser.next(&buffer) { parts.append(part) }
        buffer.discardReadBytes()
    }
    return parts
}

private func parse(_ text: String) throws(RequestParseError) -> [RequestPart] { try parse([Array(text.utf8)]) }

private func heads(_ parts: [RequestPart]) -> [ParsedHead] {
    parts.compactMap { if case .head(let head) = $0 { head } else { nil } }
}

private func body(_ parts: [RequestPart]) -> String {
    parts.compactMap { if case .body(let bytes) = $0 { String(buffer: bytes) } else { nil } }.joined()
}

private func ends(_ parts: [RequestPart]) -> Int {
    parts.filter { if case .end = $0 { true } else { false } }.count
}

@Test func simpleGetHasHeadAndEnd() throws {
    let parts = try parse("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nUser-Agent:  t \r\n\r\n")
    let head = try #require(heads(parts).first)
    #expect(head.method == "GET" && head.uri == "/a?b=1" && head.versionMinor == 1)
    #expect(head.headers.map(\.name) == ["Host", "User-Agent"] && head.headers[1].value == "t")
    #expect(head.keepAlive && !head.hasBody && !head.isHead)
    #expect(ends(parts) == 1 && parts.count == 2)
}

@Test func keepAliveFollowsVersionAndConnection() throws {
    #expect(try heads(parse("GET / HTTP/1.0\r\n\r\n"))[0].keepAlive == false)
    #expect(try heads(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"))[0].keepAlive == true)
    #expect(try heads(parse("GET / HTTP/1.1\r\nConnection: x, close\r\n\r\n"))[0].keepAlive == false)
}

@Test func contentLengthBodyArrivesInPiecesThenPipelinedRequest() throws {
    let text = Array("POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789GET /next HTTP/1.1\r\n\r\n".utf8)
    // Every split point gives the same parts.
    for split in 1..<text.count {
        let parts = try parse([Array(text[..<split]), Array(text[split...])])
        #expect(heads(parts).map(\.uri) == ["/p", "/next"])
        #expect(body(parts) == "0123456789")
        #expect(ends(parts) == 2)
    }
}

@Test func chunkedBodyWithExtensionsAndTrailers() throws {
    let text = Array("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\nGET / HTTP/1.1\r\n\r\n".utf8)
    for split in stride(from: 1, to: text.count, by: 3) {
        let parts = try parse([Array(text[..<split]), Array(text[split...])])
        #expect(heads(parts).count == 2 && heads(parts)[0].chunked)
        #expect(body(parts) == "hello, world!!!")
        #expect(ends(parts) == 2)
    }
}

@Test func leadingEmptyLinesAndBareLineFeeds() throws {
    let head = try #require(heads(parse("\r\n\r\nGET /x HTTP/1.1\nHost: y\n\n")).first)
    #expect(head.uri == "/x" && head.headers.first?.value == "y")
}

@Test func nonUTF8BytesAreLatin1Characters() throws {
    var bytes = Array("GET /caf".utf8) + [0xE9] + Array(" HTTP/1.1\r\nX-Latin: ".utf8) + [0xE9, 0xFF, 0x80]
    bytes += Array("\r\n\r\n".utf8)
    let head = try #require(heads(parse([bytes])).first)
    #expect(head.uri.unicodeScalars.map(\.value) == Array("/caf".unicodeScalars.map(\.value)) + [0xE9])
    #expect(head.headers[0].value.unicodeScalars.map(\.value) == [0xE9, 0xFF, 0x80])
    let environ = try CGIEnvironment.build(head: RequestHeadInfo(method: head.method, uri: head.uri, headers: head.headers),
                                           peer: .unix, server: .unix(path: "/tmp/s"),
                                           settings: EnvironSettings(rootPath: "", trust: try ForwardedTrust(parsing: ForwardedTrust.gunicornDefault)))
    #expect(environ.pathInfo == Array("/caf".utf8) + [0xE9])
}

@Test(arguments: [
    "GARBAGE\r\n\r\n",
    "GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
    "GET / HTTP/9.9\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    "GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
    "GET / HTTP/1.1\r\nX: a\u{7}b\r\n\r\n",
    "GET /a b HTTP/1.1\r\n\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
])
func malformedRequestsAre400(_ text: String) {
    do {
        _ = try parse(text)
        Issue.record("accepted: \(text.debugDescription)")
    } catch {
        #expect(error.status == "400 Bad Request")
    }
}

@Test func oversizedHeadIs431() {
    let text = "GET /" + String(repeating: "a", count: RequestParser.headLimit + 10)
    do {
        _ = try parse(text)
        Issue.record("no error")
    } catch {
        #expect(error.status.hasPrefix("431"))
    }
}
