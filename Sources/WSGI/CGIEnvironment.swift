/// The parts of a request head the environ is built from, free of NIO types so
/// the rules below are tested without sockets or Python.
public struct RequestHeadInfo: Sendable {
    public var method: String
    public var uri: String
    public var versionMajor: Int
    public var versionMinor: Int
    public var headers: [(name: String, value: String)]

    public init(method: String, uri: String, versionMajor: Int = 1, versionMinor: Int = 1, headers: [(name: String, value: String)]) {
        self.method = method
        self.uri = uri
        self.versionMajor = versionMajor
        self.versionMinor = versionMinor
        self.headers = headers
    }
}

/// Who is on the other end of a connection.
public enum PeerAddress: Sendable, Equatable {
    case inet(ip: String, port: Int)
    case unix
}

/// What a request needs from the worker's configuration to build its environ.
public struct EnvironSettings: Sendable {
    /// `--root-path`, else the process's `SCRIPT_NAME`, else empty.
    public var rootPath: String
    public var trust: ForwardedTrust

    public init(rootPath: String, trust: ForwardedTrust) {
        self.rootPath = rootPath
        self.trust = trust
    }
}

/// One `HTTP_*` (or `CONTENT_*`) environ entry; repeated headers already joined.
public struct EnvironHeader: Sendable, Equatable {
    public var key: String
    public var value: String
}

/// A request that cannot be given to the app.
public enum EnvironError: Error, Equatable, Sendable {
    /// The path is outside `--root-path` / `SCRIPT_NAME`.
    case pathOutsideScriptName(path: String, scriptName: String)
}

/// The CGI part of a PEP 3333 environ, computed on the event loop (no GIL).
///
/// Text values are the request's bytes latin-1 decoded (one character per
/// byte, as `RequestParser` makes them), PEP 3333's "native strings".
/// `PATH_INFO` and `SCRIPT_NAME` are bytes (percent-decoded), handed to Python
/// latin-1 decoded.
public struct CGIEnvironment: Sendable, Equatable {
    public var requestMethod: String
    public var scriptName: [UInt8]
    public var pathInfo: [UInt8]
    public var queryString: String
    public var rawURI: String
    public var serverProtocol: String
    public var serverName: String
    public var serverPort: String
    public var remoteAddr: String
    public var remotePort: String?
    public var urlScheme: String
    public var headers: [EnvironHeader]
    /// Whether the client sent `Expect: 100-continue`.
    public var expectsContinue: Bool

    /// gunicorn's `wsgi.create`, with these choices: headers whose names hold `_`
    /// are dropped (they would alias `-` ones, gunicorn's `header_map=drop`);
    /// repeated headers are joined with `, `; proxy headers count only from
    /// trusted peers.
    public static func build(head: RequestHeadInfo, peer: PeerAddress, server: WorkerBind,
                             settings: EnvironSettings) throws(EnvironError) -> CGIEnvironment {
        let trusted = settings.trust.trusts(peer)
        var headers: [EnvironHeader] = []
        headers.reserveCapacity(head.headers.count)
        var host: String?
        var realIP: String?
        var forwardedFor: String?
        var forwardedProto: String?
        var forwardedSSL: String?
        var forwardedProtocol: String?
        var scriptNameHeader: String?
        var expectsContinue = false
        for (name, value) in head.headers {
            let key = Self.environKey(for: name)
            switch key {
            case nil:
                if trusted, name.uppercased() == "SCRIPT_NAME" { scriptNameHeader = value }
                continue
            case "HTTP_HOST": host = host ?? value
            case "HTTP_X_REAL_IP": realIP = value
            case "HTTP_X_FORWARDED_FOR": forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
            case "HTTP_X_FORWARDED_PROTO": forwardedProto = value
            case "HTTP_X_FORWARDED_SSL": forwardedSSL = value
            case "HTTP_X_FORWARDED_PROTOCOL": forwardedProtocol = value
            case "HTTP_EXPECT": expectsContinue = value.lowercased() == "100-continue"
            default: break
            }
            let environKey = key!
            if let index = headers.firstIndex(where: { $0.key == environKey }) {
                headers[index].value += ", " + value
            } else {
                headers.append(EnvironHeader(key: environKey, value: value))
            }
        }

        var scheme = "http"
        var remoteAddr: String
        var remotePort: String?
        switch peer {
        case .inet(let ip, let port):
            remoteAddr = ip
            remotePort = String(port)
        case .unix:
            remoteAddr = ""
        }
        if trusted {
            if let proto = forwardedProto?.trimmingSpaces.lowercased() {
                scheme = proto == "https" ? "https" : "http"
            } else if forwardedSSL?.trimmingSpaces.lowercased() == "on" || forwardedProtocol?.trimmingSpaces.lowercased() == "ssl" {
                scheme = "https"
            }
            if let realIP = realIP?.trimmingSpaces, !realIP.isEmpty {
                remoteAddr = realIP
                remotePort = nil
            } else if let last = forwardedFor?.split(separator: ",").last.map({ String($0).trimmingSpaces }), !last.isEmpty {
                // The rightmost entry is the address our trusted proxy saw.
                remoteAddr = last
                remotePort = nil
            }
        }

        let (rawPath, query) = Self.splitTarget(head.uri)
        var scriptName = settings.rootPath
        if let header = scriptNameHeader { scriptName = header }
        while scriptName.hasSuffix("/") { scriptName.removeLast() }
        var path = rawPath
        if !scriptName.isEmpty {
            guard path == scriptName || path.hasPrefix(scriptName + "/") else {
                throw .pathOutsideScriptName(path: rawPath, scriptName: scriptName)
            }
            path = String(path.dropFirst(scriptName.count))
        }

        let serverName: String
        let serverPort: String
        switch server {
        case .tcp(let bindHost, let bindPort):
            serverName = bindHost
            serverPort = String(bindPort)
        case .unix:
            if let host, !host.isEmpty {
                let (name, port) = Self.splitHost(host)
                serverName = name
                serverPort = port ?? (scheme == "https" ? "443" : "80")
            } else {
                serverName = ""
                serverPort = ""
            }
        }

        return CGIEnvironment(
            requestMethod: head.method,
            scriptName: Self.latin1Bytes(scriptName),
            pathInfo: Self.percentDecode(path),
            queryString: query,
            rawURI: head.uri,
            serverProtocol: head.versionMajor == 1 && head.versionMinor == 1 ? "HTTP/1.1"
                : head.versionMajor == 1 && head.versionMinor == 0 ? "HTTP/1.0" : "HTTP/\(head.versionMajor).\(head.versionMinor)",
            serverName: serverName,
            serverPort: serverPort,
            remoteAddr: remoteAddr,
            remotePort: remotePort,
            urlScheme: scheme,
            headers: headers,
            expectsContinue: expectsContinue)
    }

    /// `Content-Type` → `CONTENT_TYPE`, `User-Agent` → `HTTP_USER_AGENT`; nil for
    /// names with `_` (dropped).
    public static func environKey(for name: String) -> String? {
        let utf8 = name.utf8
        if utf8.contains(UInt8(ascii: "_")) { return nil }
        // Built in place: no intermediate array (keys up to 15 bytes need no heap at all).
        let key = String(unsafeUninitializedCapacity: utf8.count + 5) { out in
            for (index, byte) in "HTTP_".utf8.enumerated() { out[index] = byte }
            var index = 5
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "-"): out[index] = UInt8(ascii: "_")
                case UInt8(ascii: "a")...UInt8(ascii: "z"): out[index] = byte - 32
                default: out[index] = byte
                }
                index += 1
            }
            return index
        }
        if key == "HTTP_CONTENT_TYPE" || key == "HTTP_CONTENT_LENGTH" { return String(key.dropFirst(5)) }
        return key
    }

    /// Path and query of a request target (origin form, or absolute form whose
    /// scheme and authority are dropped); a fragment is ignored.
    static func splitTarget(_ uri: String) -> (path: String, query: String) {
        var target = Substring(uri)
        if let hash = target.utf8.firstIndex(of: UInt8(ascii: "#")) { target = target[..<hash] }
        for scheme in ["http://", "https://"] where !target.hasPrefix("/") && target.prefix(8).lowercased().hasPrefix(scheme) {
            let rest = target.dropFirst(scheme.count)
            target = rest.firstIndex(where: { $0 == "/" || $0 == "?" }).map { rest[$0...] } ?? ""
        }
        var path = target
        var query = Substring("")
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = target[..<mark]
            query = target[target.index(after: mark)...]
        }
        if path.isEmpty && !uri.hasPrefix("*") { path = "/" }
        return (String(path), String(query))
    }

    static func splitHost(_ host: String) -> (String, String?) {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            let name = String(host[...close])
            let rest = host[host.index(after: close)...]
            return (name, rest.hasPrefix(":") ? String(rest.dropFirst()) : nil)
        }
        if let colon = host.lastIndex(of: ":") {
            return (String(host[..<colon]), String(host[host.index(after: colon)...]))
        }
        return (host, nil)
    }

    /// The bytes of latin-1 text (a character above U+00FF, from a UTF-8
    /// command line, keeps its UTF-8 bytes).
    public static func latin1Bytes(_ text: String) -> [UInt8] {
        let utf8 = text.utf8
        if !utf8.contains(where: { $0 >= 0x80 }) { return Array(utf8) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        for scalar in text.unicodeScalars {
            if scalar.value < 0x100 { bytes.append(UInt8(scalar.value)) } else { bytes.append(contentsOf: Array(String(scalar).utf8)) }
        }
        return bytes
    }

    /// `urllib.parse.unquote_to_bytes` of latin-1 text: `%XX` decoded, anything else kept.
    public static func percentDecode(_ text: String) -> [UInt8] {
        let source = latin1Bytes(text)
        var result: [UInt8] = []
        result.reserveCapacity(source.count)
        var index = 0
        while index < source.count {
            let byte = source[index]
            if byte == UInt8(ascii: "%"), index + 2 < source.count,
               let high = hexValue(source[index + 1]), let low = hexValue(source[index + 2]) {
                result.append(high << 4 | low)
                index += 3
            } else {
                result.append(byte)
                index += 1
            }
        }
        return result
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
