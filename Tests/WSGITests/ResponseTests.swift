import NIOCore
import Testing
@testable import WSGI

private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Test func statusValidation() throws {
    #expect(try ResponseHead(status: bytes("200 OK")).statusCode == 200)
    #expect(try ResponseHead(status: bytes("404")).statusCode == 404)
    for bad in ["OK", "20 OK", "200OK", "099 Low", "200 OK\r\nX: y", "abc def"] {
        #expect(throws: ResponseHeadError.self) { try ResponseHead(status: bytes(bad)) }
    }
}

@Test func headerValidation() throws {
    var head = try ResponseHead(status: bytes("200 OK"))
    try head.append(name: bytes("Content-Type"), value: bytes("text/plain"))
    try head.append(name: bytes("X-Tab"), value: bytes("a\tb"))
    #expect(throws: ResponseHeadError.invalidHeaderValue(name: "X-Evil")) { try head.append(name: bytes("X-Evil"), value: bytes("a\r\nb: c")) }
    #expect(throws: ResponseHeadError.invalidHeaderValue(name: "X-Nul")) { try head.append(name: bytes("X-Nul"), value: [0x61, 0x00]) }
    #expect(throws: ResponseHeadError.invalidHeaderName("Bad Name")) { try head.append(name: bytes("Bad Name"), value: bytes("x")) }
    #expect(throws: ResponseHeadError.invalidHeaderName("X:Y")) { try head.append(name: bytes("X:Y"), value: bytes("x")) }
    for hop in ["Transfer-Encoding", "Keep-Alive", "Upgrade", "TE", "Trailer", "Proxy-Authenticate"] {
        #expect(throws: ResponseHeadError.hopByHopHeader(hop)) { try head.append(name: bytes(hop), value: bytes("x")) }
    }
    #expect(throws: ResponseHeadError.hopByHopHeader("Connection")) { try head.append(name: bytes("Connection"), value: bytes("upgrade")) }
    try head.append(name: bytes("Connection"), value: bytes("close"))
    #expect(head.wantsClose)
    #expect(head.headerCount == 2)
}

@Test func contentLengthValidation() throws {
    var head = try ResponseHead(status: bytes("200 OK"))
    try head.append(name: bytes("Content-Length"), value: bytes(" 12 "))
    #expect(head.contentLength == 12)
    try head.append(name: bytes("content-length"), value: bytes("12"))
    #expect(head.headerCount == 1)
    #expect(throws: ResponseHeadError.self) { try head.append(name: bytes("Content-Length"), value: bytes("13")) }
    var other = try ResponseHead(status: bytes("200 OK"))
    for bad in ["-1", "1e3", "", "99999999999999999999"] {
        #expect(throws: ResponseHeadError.self) { try other.append(name: bytes("Content-Length"), value: bytes(bad)) }
    }
}

/// Special names are recognised as bytes, in any case; others of the same length are plain headers.
@Test func specialHeaderNamesAnyCase() throws {
    var head = try ResponseHead(status: bytes("200 OK"))
    try head.append(name: bytes("DATE"), value: bytes("Sat, 21 Nov 2026 20:00:00 GMT"))
    try head.append(name: bytes("sErVeR"), value: bytes("app"))
    try head.append(name: bytes("CONTENT-LENGTH"), value: bytes("\t7"))
    try head.append(name: bytes("Data"), value: bytes("x"))
    try head.append(name: bytes("Content-Lengths"), value: bytes("x"))
    #expect(head.hasDate && head.hasServer && head.contentLength == 7)
    #expect(head.headerCount == 5)
    #expect(throws: ResponseHeadError.hopByHopHeader("TRANSFER-ENCODING")) { try head.append(name: bytes("TRANSFER-ENCODING"), value: bytes("chunked")) }
    #expect(throws: ResponseHeadError.hopByHopHeader("te")) { try head.append(name: bytes("te"), value: bytes("x")) }
}

@Test func framingDecisions() throws {
    let plain = try ResponseHead(status: bytes("200 OK"))
    var sized = plain
    try sized.append(name: bytes("Content-Length"), value: bytes("5"))
    let noContent = try ResponseHead(status: bytes("204 No Content"))
    let chunked = ResponsePlan(head: plain, isHead: false, httpMinorVersion: 1, requestKeepAlive: true, draining: false)
    #expect(chunked.framing == .chunked && chunked.keepAlive)
    #expect(ResponsePlan(head: sized, isHead: false, httpMinorVersion: 1, requestKeepAlive: true, draining: false).framing == .contentLength(5))
    let old = ResponsePlan(head: plain, isHead: false, httpMinorVersion: 0, requestKeepAlive: true, draining: false)
    #expect(old.framing == .untilClose && !old.keepAlive)
    #expect(ResponsePlan(head: sized, isHead: true, httpMinorVersion: 1, requestKeepAlive: true, draining: false).framing == .noBody)
    #expect(ResponsePlan(head: noContent, isHead: false, httpMinorVersion: 1, requestKeepAlive: true, draining: false).framing == .noBody)
    #expect(!ResponsePlan(head: sized, isHead: false, httpMinorVersion: 1, requestKeepAlive: true, draining: true).keepAlive)
    #expect(!ResponsePlan(head: sized, isHead: false, httpMinorVersion: 1, requestKeepAlive: false, draining: false).keepAlive)
}

@Test func headEncoding() throws {
    var head = try ResponseHead(status: bytes("200 OK"))
    try head.append(name: bytes("Content-Type"), value: bytes("text/plain"))
    let plan = ResponsePlan(head: head, isHead: false, httpMinorVersion: 0, requestKeepAlive: false, draining: false)
    var buffer = ByteBuffer()
    plan.encode(head, httpMinorVersion: 0, date: "Sun, 06 Nov 1994 08:49:37 GMT", into: &buffer)
    #expect(String(buffer: buffer) == "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nServer: gantry\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n")
    let chunked = ResponsePlan(head: head, isHead: false, httpMinorVersion: 1, requestKeepAlive: true, draining: false)
    var second = ByteBuffer()
    chunked.encode(head, httpMinorVersion: 1, date: "D", into: &second)
    #expect(String(buffer: second).hasSuffix("Date: D\r\nTransfer-Encoding: chunked\r\n\r\n"))
}

@Test func bodyBufferReads() {
    var body = BodyBuffer()
    body.append(ByteBuffer(string: "line one\nli"))
    body.append(ByteBuffer(string: "ne two\nrest"))
    #expect(body.canAnswerReadline(nil))
    #expect(!body.canAnswerRead(nil))
    #expect(body.canAnswerRead(5))
    #expect(body.takeLine(nil) == Array("line one\n".utf8))
    #expect(body.takeLine(3) == Array("lin".utf8))
    #expect(body.takeLine(nil) == Array("e two\n".utf8))
    #expect(!body.canAnswerReadline(nil))
    #expect(body.canAnswerReadline(4))
    body.isComplete = true
    #expect(body.take(2) == Array("re".utf8))
    #expect(body.takeLine(nil) == Array("st".utf8))
    #expect(body.take(nil).isEmpty)
    #expect(body.count == 0)
}

@Test func accessLogLine() {
    let line = AccessLogLine(remoteAddr: "1.2.3.4", requestLine: "GET / HTTP/1.1", status: 200, bodyBytes: 0, referer: nil, userAgent: "ua")
    #expect(line.formatted(time: "[01/Jan/2026:00:00:00 +0000]") == "1.2.3.4 - - [01/Jan/2026:00:00:00 +0000] \"GET / HTTP/1.1\" 200 - \"-\" \"ua\"\n")
}
