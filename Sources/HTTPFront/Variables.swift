import Foundation
import NIOHTTP1

/// What nginx variables read from one request. Filled by the front as the
/// request goes through its phases; `status`, `bodyBytesSent` and
/// `bytesSent` become meaningful once the response has been written.
///
/// A value type so a module (the reverse proxy) can copy it and render
/// templates on any thread.
public struct RequestVariables: Sendable {
    public var method: String
    /// The request target exactly as the client sent it (`$request_uri`).
    public var requestURI: String
    /// The normalised, percent-decoded path (`$uri`); changes on internal redirects.
    public var uri: String
    /// The query string without `?` (`$args`), empty when there is none.
    public var args: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var remoteAddress: String
    public var remotePort: String
    public var serverAddress: String
    public var serverPort: String
    public var scheme: String
    /// The `server_name` of the chosen server (its first name).
    public var serverName: String
    /// The `Host` header (lowercased, port removed), else the server name (`$host`).
    public var host: String
    /// `$0`…`$9` from the last regex that matched (location or `server_name`).
    public var captures: [String]
    /// Named captures from regexes (`(?<name>…)` gives `$name`).
    public var namedCaptures: [String: String]
    public var status: Int
    public var bodyBytesSent: Int
    public var bytesSent: Int
    /// When the first byte of the request arrived (seconds since the epoch).
    public var startTime: Double
    /// Values set by content modules (`$upstream_addr`, …), by variable name.
    public var moduleValues: [String: String] = [:]
    /// `$connection`: serial number of the client connection.
    public var connectionNumber: Int = 0
    /// `$connection_requests`: requests made over this connection so far.
    public var connectionRequests: Int = 0

    public init(method: String, requestURI: String, uri: String, args: String, version: HTTPVersion,
                headers: HTTPHeaders, remoteAddress: String = "", remotePort: String = "",
                serverAddress: String = "", serverPort: String = "", scheme: String = "http",
                serverName: String = "", host: String = "", captures: [String] = [],
                namedCaptures: [String: String] = [:], status: Int = 0, bodyBytesSent: Int = 0,
                bytesSent: Int = 0, startTime: Double = 0) {
        self.method = method
        self.requestURI = requestURI
        self.uri = uri
        self.args = args
        self.version = version
        self.headers = headers
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
        self.serverAddress = serverAddress
        self.serverPort = serverPort
        self.scheme = scheme
        self.serverName = serverName
        self.host = host
        self.captures = captures
        self.namedCaptures = namedCaptures
        self.status = status
        self.bodyBytesSent = bodyBytesSent
        self.bytesSent = bytesSent
        self.startTime = startTime
    }

    /// `$request`: the request line as received.
    public var requestLine: String {
        "\(method) \(requestURI) HTTP/\(version.major).\(version.minor)"
    }

    /// `$arg_NAME`: the first `NAME=value` of the query string, undecoded as in nginx.
    public func argument(_ name: String) -> String? {
        for pair in args.split(separator: "&", omittingEmptySubsequences: true) {
            if let eq = pair.firstIndex(of: "=") {
                if pair[..<eq].lowercased() == name { return String(pair[pair.index(after: eq)...]) }
            } else if pair.lowercased() == name {
                return ""
            }
        }
        return nil
    }
}

/// One variable a template refers to, resolved when the template is compiled
/// so rendering does no name lookups.
public enum VariableName: Sendable, Hashable {
    case uri, documentURI, requestURI, args, queryString, isArgs, host, hostname
    case remoteAddress, remotePort, serverAddress, serverPort, serverName, serverProtocol
    case scheme, https, requestMethod, request, status, bodyBytesSent, bytesSent
    case requestTime, timeLocal, timeISO8601, msec, contentType, contentLength, connection
    case httpUserAgent, httpReferer, remoteUser, pid, connectionNumber, connectionRequests
    /// `$arg_NAME` (NAME lowercased).
    case argument(String)
    /// `$http_NAME`: request header, `_` written for `-`.
    case header(String)
    /// `$1`…`$9`, `$0`.
    case capture(Int)
    /// `$name` from a named regex capture.
    case namedCapture(String)
    /// A variable a content module sets per request (`HTTPExchange.setVariable`), e.g. `$upstream_addr`.
    case module(String)

    /// Variables content modules may set; they render empty where no module set them, as in nginx.
    public static let moduleVariableNames: Set<String> = [
        "upstream_addr", "upstream_status", "upstream_response_time", "upstream_connect_time",
        "upstream_header_time", "upstream_response_length", "upstream_bytes_received",
        "upstream_bytes_sent", "upstream_cache_status",
    ]

    /// Resolves a name as written after `$`; nil when nginx would say `unknown "NAME" variable`.
    /// `namedCaptures` are the names that regexes in scope define.
    public init?(_ name: String, namedCaptures: Set<String> = []) {
        switch name {
        case "uri": self = .uri
        case "document_uri": self = .documentURI
        case "request_uri": self = .requestURI
        case "args": self = .args
        case "query_string": self = .queryString
        case "is_args": self = .isArgs
        case "host": self = .host
        case "hostname": self = .hostname
        case "remote_addr": self = .remoteAddress
        case "remote_port": self = .remotePort
        case "server_addr": self = .serverAddress
        case "server_port": self = .serverPort
        case "server_name": self = .serverName
        case "server_protocol": self = .serverProtocol
        case "scheme": self = .scheme
        case "https": self = .https
        case "request_method": self = .requestMethod
        case "request": self = .request
        case "status": self = .status
        case "body_bytes_sent": self = .bodyBytesSent
        case "bytes_sent": self = .bytesSent
        case "request_time": self = .requestTime
        case "time_local": self = .timeLocal
        case "time_iso8601": self = .timeISO8601
        case "msec": self = .msec
        case "content_type": self = .contentType
        case "content_length": self = .contentLength
        case "connection": self = .connection
        case "remote_user": self = .remoteUser
        case "pid": self = .pid
        case "connection_requests": self = .connectionRequests
        default:
            if name.hasPrefix("arg_"), name.count > 4 {
                self = .argument(String(name.dropFirst(4)).lowercased())
            } else if name.hasPrefix("http_"), name.count > 5 {
                self = .header(String(name.dropFirst(5)).lowercased().replacingOccurrences(of: "_", with: "-"))
            } else if name.count == 1, let digit = Int(name) {
                self = .capture(digit)
            } else if namedCaptures.contains(name) {
                self = .namedCapture(name)
            } else if Self.moduleVariableNames.contains(name) || name.hasPrefix("upstream_http_") {
                self = .module(name)
            } else {
                return nil
            }
        }
    }
}

/// A string with `$var` / `${var}` references, compiled once at config load
/// and rendered per request (`return`, `add_header`, `log_format`,
/// `proxy_set_header`, …).
///
/// ```swift
/// let template = try VariableTemplate("$scheme://$host$request_uri")
/// let value = template.render(variables)
/// ```
public struct VariableTemplate: Sendable, Hashable, CustomStringConvertible {
    public enum Segment: Sendable, Hashable {
        case literal(String)
        case variable(VariableName)
    }

    public let segments: [Segment]
    /// The text as written in the config.
    public let source: String

    /// The reason a template does not compile, worded as nginx words it.
    public struct CompileError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public init(_ source: String, namedCaptures: Set<String> = []) throws(CompileError) {
        self.source = source
        var segments: [Segment] = []
        var literal = ""
        let chars = Array(source.unicodeScalars)
        var i = 0
        func isNameChar(_ c: Unicode.Scalar) -> Bool {
            (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") || c == "_"
        }
        while i < chars.count {
            let c = chars[i]
            guard c == "$" else {
                literal.unicodeScalars.append(c)
                i += 1
                continue
            }
            i += 1
            var name = ""
            if i < chars.count, chars[i] == "{" {
                i += 1
                while i < chars.count, chars[i] != "}" {
                    name.unicodeScalars.append(chars[i])
                    i += 1
                }
                guard i < chars.count else {
                    throw CompileError(message: "the closing bracket in \"\(name)\" variable is missing")
                }
                i += 1
            } else if i < chars.count, chars[i] >= "0", chars[i] <= "9" {
                name.unicodeScalars.append(chars[i])
                i += 1
            } else {
                while i < chars.count, isNameChar(chars[i]) {
                    name.unicodeScalars.append(chars[i])
                    i += 1
                }
            }
            guard !name.isEmpty else {
                throw CompileError(message: "invalid variable name in \"\(source)\"")
            }
            guard let variable = VariableName(name, namedCaptures: namedCaptures) else {
                throw CompileError(message: "unknown \"\(name)\" variable")
            }
            if !literal.isEmpty {
                segments.append(.literal(literal))
                literal = ""
            }
            segments.append(.variable(variable))
        }
        if !literal.isEmpty { segments.append(.literal(literal)) }
        self.segments = segments
    }

    /// A template without variables renders to this text without work.
    public var constantValue: String? {
        if segments.isEmpty { return "" }
        if segments.count == 1, case .literal(let text) = segments[0] { return text }
        return nil
    }

    public var description: String { source }

    /// Whether the template refers to a regex capture (such values are rendered per request).
    public var usesCaptures: Bool {
        segments.contains {
            if case .variable(.capture) = $0 { return true }
            if case .variable(.namedCapture) = $0 { return true }
            return false
        }
    }

    public func render(_ variables: RequestVariables, now: Double? = nil) -> String {
        if let constant = constantValue { return constant }
        // `$host` alone (the usual `proxy_set_header` value): the value itself, no concatenation.
        if segments.count == 1, case .variable(let name) = segments[0] { return Self.value(of: name, in: variables, now: now) }
        var out = ""
        for segment in segments {
            switch segment {
            case .literal(let text): out += text
            case .variable(let name): out += Self.value(of: name, in: variables, now: now)
            }
        }
        return out
    }

    /// The value of one variable; absent values render as the empty string, as in nginx.
    public static func value(of name: VariableName, in v: RequestVariables, now: Double? = nil) -> String {
        switch name {
        case .uri, .documentURI: return v.uri
        case .requestURI: return v.requestURI
        case .args, .queryString: return v.args
        case .isArgs: return v.args.isEmpty ? "" : "?"
        case .host: return v.host
        case .hostname: return ProcessInfo.processInfo.hostName
        case .remoteAddress: return v.remoteAddress
        case .remotePort: return v.remotePort
        case .serverAddress: return v.serverAddress
        case .serverPort: return v.serverPort
        case .serverName: return v.serverName
        case .serverProtocol: return "HTTP/\(v.version.major).\(v.version.minor)"
        case .scheme: return v.scheme
        case .https: return v.scheme == "https" ? "on" : ""
        case .requestMethod: return v.method
        case .request: return v.requestLine
        case .status: return v.status == 0 ? "000" : String(v.status)
        case .bodyBytesSent: return String(v.bodyBytesSent)
        case .bytesSent: return String(v.bytesSent)
        case .requestTime:
            let elapsed = max(0, (now ?? Date().timeIntervalSince1970) - v.startTime)
            let millis = Int((elapsed * 1000).rounded())
            return "\(millis / 1000).\(String(repeating: "0", count: 3 - String(millis % 1000).count))\(millis % 1000)"
        case .timeLocal: return HTTPDate.commonLogFormat(now ?? Date().timeIntervalSince1970)
        case .timeISO8601: return HTTPDate.iso8601(now ?? Date().timeIntervalSince1970)
        case .msec:
            let t = now ?? Date().timeIntervalSince1970
            return String(format: "%.3f", t)
        case .contentType: return v.headers.first(name: "content-type") ?? ""
        case .contentLength: return v.headers.first(name: "content-length") ?? ""
        case .connection, .connectionNumber: return String(v.connectionNumber)
        case .connectionRequests: return String(v.connectionRequests)
        case .remoteUser: return ""
        case .pid: return String(getpid())
        case .httpUserAgent: return v.headers.first(name: "user-agent") ?? ""
        case .httpReferer: return v.headers.first(name: "referer") ?? ""
        case .argument(let key): return v.argument(key) ?? ""
        case .header(let key):
            var values = v.headers[key]
            if values.isEmpty {
                // nginx compares `-` and `_` alike: `$http_x_foo` also reads an `X_Foo` header.
                values = v.headers.filter { $0.name.lowercased().replacingOccurrences(of: "_", with: "-") == key }.map(\.value)
            }
            if values.count <= 1 { return values.first ?? "" }
            return values.joined(separator: key == "cookie" ? "; " : ", ")
        case .capture(let index): return index < v.captures.count ? v.captures[index] : ""
        case .namedCapture(let key): return v.namedCaptures[key] ?? ""
        case .module(let key): return v.moduleValues[key] ?? ""
        }
    }
}
