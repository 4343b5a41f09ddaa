import NIOCore
import NIOHTTP1

/// A piece of a response body: bytes in memory or a range of an open file (sent with sendfile).
enum BodyPiece {
    case bytes(ByteBuffer)
    case file(OpenFile, start: Int, end: Int)

    var count: Int {
        switch self {
        case .bytes(let b): return b.readableBytes
        case .file(_, let start, let end): return end - start
        }
    }
}

/// A response the front produces itself (static file, redirect, error page, `return`).
struct FrontResponse {
    var status: HTTPResponseStatus
    var headers: [(String, String)] = []
    var body: [BodyPiece] = []
    /// `Content-Length` to announce; nil only for 304 and 1xx/204.
    var contentLength: Int?
    /// Do not send the body (HEAD), but announce its length.
    var suppressBody = false
    /// nginx closes the connection after some errors (400, 413, 414, 500, 501, …).
    var closeConnection = false
    /// `return 444`: close the connection without answering.
    var closeWithoutResponse = false
    /// Whether `add_header`/`expires` apply (set false for the front's own early errors).
    var location: LocationSettings?

    init(status: HTTPResponseStatus) {
        self.status = status
    }

    /// nginx's built-in page for a status: `<html>…<center><h1>404 Not Found</h1></center>…`.
    static func builtinPage(_ status: HTTPResponseStatus, serverTokens: Bool, allocator: ByteBufferAllocator) -> FrontResponse {
        var response = FrontResponse(status: status)
        let code = status.code
        if code == 204 || code == 304 || code < 200 {
            response.contentLength = nil
            return response
        }
        let title = "\(code) \(status.nginxReason)"
        let tail = serverTokens ? "<hr><center>\(FrontServerInfo.nameAndVersion)</center>\r\n" : "<hr><center>\(FrontServerInfo.name)</center>\r\n"
        let html = "<html>\r\n<head><title>\(title)</title></head>\r\n<body>\r\n<center><h1>\(title)</h1></center>\r\n\(tail)</body>\r\n</html>\r\n"
        var buffer = allocator.buffer(capacity: html.utf8.count)
        buffer.writeString(html)
        response.headers.append(("Content-Type", "text/html"))
        response.body = [.bytes(buffer)]
        response.contentLength = buffer.readableBytes
        return response
    }
}

/// The server's name in `Server` headers and error pages.
public enum FrontServerInfo {
    public static let name = "gantry"
    public static let version = "0.1.0"
    public static var nameAndVersion: String { "\(name)/\(version)" }
}

extension HTTPResponseStatus {
    /// nginx's reason phrases differ from NIO's for a few codes (`413 Request Entity Too Large`, `414 Request-URI Too Large`).
    var nginxReason: String {
        switch code {
        case 405: return "Not Allowed"
        case 413: return "Request Entity Too Large"
        case 414: return "Request-URI Too Large"
        case 416: return "Requested Range Not Satisfiable"
        case 302: return "Moved Temporarily"
        case 494: return "Request Header Or Cookie Too Large"
        default: return reasonPhrase
        }
    }
}
