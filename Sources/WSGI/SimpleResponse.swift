import NIOCore

/// Responses the server makes itself (errors before or instead of the app).
enum SimpleResponse {
    static func make(_ status: String, httpMinorVersion: Int = 1, message: String? = nil) -> ByteBuffer {
        let reason = status.split(separator: " ", maxSplits: 1).last.map(String.init) ?? status
        let body = "<html><head><title>\(reason)</title></head><body><h1><p>\(message ?? reason)</p></h1></body></html>"
        var buffer = ByteBufferAllocator().buffer(capacity: 256 + body.utf8.count)
        buffer.writeString("HTTP/1.\(httpMinorVersion) \(status)\r\nServer: gantry\r\nDate: \(HTTPDate.shared.header())\r\n")
        buffer.writeString("Connection: close\r\nContent-Type: text/html\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
        buffer.writeString(body)
        return buffer
    }
}
