import NIOCore
import NIOHTTP1
import Testing
@testable import ReverseProxy

/// The upstream response parser, fed bytes without sockets.
@Suite struct UpstreamResponseParserTests {
    /// Everything the parser makes of `text`, fed in pieces of `step` bytes.
    func events(_ text: String, step: Int = .max, toHEAD: Bool = false, maxHeadSize: Int = 4096,
                close: Bool = false) throws(UpstreamResponseError) -> (events: [UpstreamResponseParser.Event], parser: UpstreamResponseParser) {
        var parser = UpstreamResponseParser(maxHeadSize: maxHeadSize)
        parser.expectResponse(toHEAD: toHEAD)
        var out: [UpstreamResponseParser.Event] = []
        var buffer = ByteBuffer()
        let bytes = Array(text.utf8)
        var offset = 0
        repeat {
            let end = min(bytes.count, offset + min(step, bytes.count))
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            while let event = try parser.next(&buffer) { out.append(event) }
        } while offset < bytes.count
        if close, parser.connectionClosed() == .end { out.append(.end) }
        return (out, parser)
    }

    func body(_ events: [UpstreamResponseParser.Event]) -> String {
        var text = ""
        for case .body(let buffer) in events { text += String(buffer: buffer) }
        return text
    }

    @Test func contentLengthResponse() throws {
        let text = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
        for step in [1, 3, text.utf8.count] {
            let (events, parser) = try events(text, step: step)
            guard case .head(let head) = events.first else { Issue.record("no head"); return }
            #expect(head.status == .ok)
            #expect(head.headers["content-type"] == ["text/plain"])
            #expect(body(events) == "hello")
            #expect(events.last == .end)
            #expect(parser.keepAlive)
            #expect(parser.isIdle)
        }
    }

    @Test func chunkedResponseWithExtensionsAndTrailers() throws {
        let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        for step in [1, 7, text.utf8.count] {
            let (events, parser) = try events(text, step: step)
            #expect(body(events) == "hello world")
            #expect(events.last == .end)
            #expect(parser.keepAlive)
        }
    }

    @Test func closeDelimitedBodyEndsWithTheConnection() throws {
        let (events, parser) = try events("HTTP/1.1 200 OK\r\n\r\nuntil close", close: true)
        #expect(body(events) == "until close")
        #expect(events.last == .end)
        #expect(!parser.keepAlive)
    }

    @Test func noBodyAfterHeadAnd204And304() throws {
        let (afterHead, _) = try events("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", toHEAD: true)
        #expect(afterHead.count == 2 && afterHead.last == .end)
        for status in ["204 No Content", "304 Not Modified"] {
            let (events, parser) = try events("HTTP/1.1 \(status)\r\n\r\n")
            #expect(events.count == 2 && events.last == .end)
            #expect(parser.keepAlive)
        }
    }

    @Test func interimResponsesComeBeforeTheFinalOne() throws {
        let (events, _) = try events("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        guard events.count == 4, case .head(let interim) = events[0], case .head(let final) = events[1] else {
            Issue.record("events: \(events)")
            return
        }
        #expect(interim.status.code == 100)
        #expect(final.status.code == 200)
        #expect(body(events) == "ok")
    }

    @Test func switchingProtocolsLeavesTheRestUnread() throws {
        var parser = UpstreamResponseParser()
        parser.expectResponse(toHEAD: false)
        var buffer = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nRAW")
        guard case .head(let head)? = try parser.next(&buffer) else { Issue.record("no head"); return }
        #expect(head.status == .switchingProtocols)
        #expect(try parser.next(&buffer) == .end)
        #expect(try parser.next(&buffer) == nil)
        #expect(String(buffer: buffer) == "RAW")
        #expect(!parser.keepAlive)
    }

    @Test func lfOnlyLinesAreAccepted() throws {
        let (events, _) = try events("HTTP/1.0 200 OK\nContent-Length: 2\nConnection: keep-alive\n\nok")
        guard case .head(let head) = events.first else { Issue.record("no head"); return }
        #expect(head.version == .http1_0)
        #expect(body(events) == "ok")
    }

    @Test func keepAliveFollowsVersionAndConnection() throws {
        #expect(try !events("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").parser.keepAlive)
        #expect(try !events("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").parser.keepAlive)
        #expect(try events("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").parser.keepAlive)
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\n Folded: value\r\n\r\n",           // obs-fold (a line starting with a space)
        "HTTP/1.1 200 OK\r\nBad Name: value\r\n\r\n",          // space in a name
        "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "garbage\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX",
    ])
    func malformedResponsesAreInvalidHeaders(_ text: String) {
        #expect(throws: UpstreamResponseError.self) { try events(text) }
    }

    @Test func aHeadLargerThanTheBufferIsTooBig() {
        let big = "HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "a", count: 5000) + "\r\n\r\n"
        #expect(throws: UpstreamResponseError.tooBig) { try events(big, step: 1000) }
        #expect(throws: UpstreamResponseError.tooBig) { try events(big) }
        #expect(throws: Never.self) { try events(big, maxHeadSize: 8192) }
    }

    @Test func hopByHopNamesMatchInAnyCase() {
        for name in HeaderRules.hopByHop {
            #expect(HeaderRules.isHopByHop(name))
            #expect(HeaderRules.isHopByHop(name.uppercased()))
        }
        #expect(!HeaderRules.isHopByHop("content-type"))
        #expect(!HeaderRules.isHopByHop("upgrades"))
    }

    @Test func requestHeadBytesMatchTheHeaderList() {
        var client = HTTPHeaders()
        client.add(name: "Host", value: "example.com")
        client.add(name: "Accept", value: "*/*")
        client.add(name: "Connection", value: "keep-alive")
        let set: [(name: String, value: String)] = [("Host", "backend"), ("Connection", "close"), ("X-Real-IP", "1.2.3.4")]
        var buffer = ByteBuffer()
        let info = HeaderRules.writeUpstreamRequestHead(into: &buffer, method: "GET", uri: "/a?b", version: .http1_0,
                                                        setHeaders: set, client: client, passClientHeaders: true,
                                                        framing: .none)
        #expect(String(buffer: buffer) == "GET /a?b HTTP/1.0\r\nHost: backend\r\nConnection: close\r\nX-Real-IP: 1.2.3.4\r\nAccept: */*\r\n\r\n")
        #expect(info.closesConnection)
        #expect(!info.upgrade)
    }

    /// `setNames` (every `proxy_set_header` name) keeps the client's headers of those names back
    /// even when the list given leaves them out (set to a constant ""), whatever the length mask says.
    @Test func setHeaderNamesKeepClientHeadersBack() {
        var client = HTTPHeaders()
        client.add(name: "host", value: "example.com")
        client.add(name: "accept-ENCODING", value: "gzip")
        client.add(name: "X-Other", value: "1")
        let set: [(name: String, value: String)] = [("Host", "backend")]
        let names = ["Host", "Accept-Encoding", "TE"]
        for mask in [HeaderRules.lengthBits(names), UInt64.max] {
            var buffer = ByteBuffer()
            _ = HeaderRules.writeUpstreamRequestHead(into: &buffer, method: "GET", uri: "/", version: .http1_1,
                                                     setHeaders: set, client: client, passClientHeaders: true,
                                                     framing: .none, setNameLengths: mask, setNames: names)
            #expect(String(buffer: buffer) == "GET / HTTP/1.1\r\nHost: backend\r\nX-Other: 1\r\n\r\n")
        }
        #expect(HeaderRules.lengthBits(["TE", "Host", String(repeating: "a", count: 70)]) == (1 << 2 | 1 << 4 | 1 << 63) as UInt64)
    }

    /// Kept lines in the usual form are copied in runs; others (no space after the colon, LF only,
    /// trailing blanks) are written out again; the result is the same either way.
    @Test func clientHeaderLinesCopiedInRunsOrRewritten() throws {
        let text = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nServer: x\r\nC:3\r\nD: 4  \r\nE: 5\nF: 6\r\n"
            + "G: 7\r\nX-Hidden: h\r\nH: \r\n\r\n"
        guard case .head(let head) = try events(text).events.first else { Issue.record("no head"); return }
        var lines = ByteBuffer(string: "before\r\n")
        HeaderRules.writeClientResponseHeaderLines(head, hidden: ["x-hidden", "date"], redirects: [], into: &lines)
        #expect(String(buffer: lines) == "before\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\nF: 6\r\nG: 7\r\nH: \r\n")
    }

    @Test func clientHeaderLinesAreFilteredAsBytes() throws {
        let text = "HTTP/1.1 302 Found\r\nServer: up\r\nDate: now\r\nLocation: http://backend/a\r\n"
            + "Connection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: timeout=5\r\nX-Secret: s\r\n"
            + "Content-Length: 0\r\nX-Kept: yes\r\n\r\n"
        guard case .head(let head) = try events(text).events.first else { Issue.record("no head"); return }
        var lines = ByteBuffer()
        HeaderRules.writeClientResponseHeaderLines(head, hidden: ["x-secret"],
                                                   redirects: [ProxyRedirectRule(from: "http://backend/", to: "/")],
                                                   into: &lines)
        #expect(String(buffer: lines) == "Location: /a\r\nContent-Length: 0\r\nX-Kept: yes\r\n")
        #expect(head.hasContentLength)
        #expect(head.headers.count == 9)
    }
}
