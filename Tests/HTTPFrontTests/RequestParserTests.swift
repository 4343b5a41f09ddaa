import NIOCore
import Testing
@testable import HTTPFront

@Suite struct RequestParserTests {
    private func parse(_ text: String, limits: HTTPRequestParser.Limits = .init()) throws(RequestParseError) -> [HTTPRequestParser.Event] {
        var parser = HTTPRequestParser(limits: limits)
        var buffer = ByteBuffer(string: text)
        var events: [HTTPRequestParser.Event] = []
        while let event = try parser.next(&buffer) { events.append(event) }
        return events
    }

    private func head(_ text: String) throws -> ParsedRequestHead {
        guard case .head(let box)? = try parse(text).first else { throw RequestParseError.bad("no head") }
        return box.head
    }

    @Test func simpleGet() throws {
        let h = try head("GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
        #expect(h.method == "GET" && h.target == "/a?b" && h.version == .http1_1)
        #expect(h.headers["accept"] == ["*/*"])
        #expect(h.framing == .none && h.wantsKeepAlive)
    }

    @Test func keepAliveRules() throws {
        #expect(try !head("GET / HTTP/1.0\r\n\r\n").wantsKeepAlive)
        #expect(try head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").wantsKeepAlive)
        #expect(try !head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").wantsKeepAlive)
    }

    @Test func pipelinedRequestsAndBodies() throws {
        let events = try parse("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(events.count == 4)
        #expect(events[1] == .body(ByteBuffer(string: "abc")))
        #expect(events[2] == .end)
    }

    @Test func chunkedBody() throws {
        let events = try parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: v\r\n\r\n")
        #expect(events.dropFirst().map { $0 } == [.body(ByteBuffer(string: "abc")), .body(ByteBuffer(string: "de")), .end])
    }

    @Test func incrementalInput() throws {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer(string: "GET / HT")
        #expect(try parser.next(&buffer) == nil)
        buffer.writeString("TP/1.1\r\nHost: x\r\n\r\n")
        guard case .head? = try parser.next(&buffer) else { Issue.record("no head"); return }
    }

    @Test(arguments: [
        ("get / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("GET /\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nA : b\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400),
    ])
    func refusals(text: String, status: Int) {
        do {
            _ = try parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(Int(error.status.code) == status)
        }
    }

    /// Framing and keep-alive come from what the parser noted of the headers (any case), with
    /// nginx's refusals and reasons.
    @Test func framingFromHeadersNotedWhileParsing() throws {
        #expect(try head("POST / HTTP/1.1\r\nhOsT: x\r\ncontent-LENGTH: 12\r\n\r\n").framing == .length(12))
        #expect(try head("POST / HTTP/1.1\r\nHost: x\r\nTRANSFER-encoding: chunked\r\n\r\n").framing == .chunked)
        #expect(try head("GET / HTTP/1.0\r\n\r\n").framing == .none)
        #expect(try !head("GET / HTTP/1.1\r\nHost: x\r\nCONNECTION: Close\r\n\r\n").wantsKeepAlive)
        #expect(try head("GET / HTTP/1.1\r\nHost: x\r\n\r\n").hasConnectionHeader == false)
        #expect(try head("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n").hasConnectionHeader)
        let refusals: [(String, String)] = [
            ("GET / HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n", "client sent duplicate host header"),
            ("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "client sent HTTP/1.1 request without \"Host\" header"),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\n",
             "client sent duplicate header line: \"Content-Length\""),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", "client sent invalid \"Content-Length\" header"),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", "client sent invalid \"Content-Length\" header"),
        ]
        for (text, reason) in refusals {
            #expect(throws: RequestParseError.bad(reason)) { try parse(text) }
        }
        // A name nginx ignores (`ignore_invalid_headers on`) is not counted either.
        #expect(try head("GET / HTTP/1.1\r\nHost: x\r\nHost.bad: y\r\n\r\n").headers["host"] == ["x"])
    }

    @Test func anEmptyReadAsksForMore() throws {
        var parser = HTTPRequestParser()
        var buffer = ByteBuffer()
        #expect(try parser.next(&buffer) == nil)
        buffer = ByteBuffer(string: "\r\n")
        #expect(try parser.next(&buffer) == nil)
        buffer.writeString("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        guard case .head(let box)? = try parser.next(&buffer) else { Issue.record("no head"); return }
        #expect(box.head.target == "/")
    }

    @Test func largeHeaderBuffers() {
        let limits = HTTPRequestParser.Limits(largeBufferSize: 100, largeBufferCount: 2)
        #expect(throws: RequestParseError(status: .uriTooLong, reason: "client sent too long URI")) {
            try parse("GET /" + String(repeating: "a", count: 200) + " HTTP/1.1\r\n\r\n", limits: limits)
        }
        do {
            _ = try parse("GET / HTTP/1.1\r\nHost: x\r\nA: " + String(repeating: "a", count: 120) + "\r\n\r\n", limits: limits)
            Issue.record("accepted a long header line")
        } catch {
            #expect(error.status == .badRequest)
        }
    }
}
