import NIOCore
import NIOHTTP1

/// `$upstream_addr`, `$upstream_status`, `$upstream_response_time` in nginx's format:
/// one value per server tried, `, `-separated (`127.0.0.1:8001, 127.0.0.1:8002` / `502, 200`).
public struct UpstreamVariableValues: Sendable, Equatable {
    public var upstreamAddr: String
    public var upstreamStatus: String
    public var upstreamResponseTime: String
    public var upstreamConnectTime: String
    public var upstreamHeaderTime: String
    public var upstreamResponseLength: String
    /// `$upstream_http_NAME` (name lowercased, `-` as `_`) from the last server's response head;
    /// repeated headers joined with `, ` as nginx does.
    public var responseHeaders: [String: String] = [:]

    public init(_ tries: [UpstreamTry]) {
        upstreamAddr = tries.map(\.address).joined(separator: ", ")
        upstreamStatus = tries.map { $0.status.map(String.init) ?? "-" }.joined(separator: ", ")
        upstreamResponseTime = tries.map { Self.seconds($0.responseTime) }.joined(separator: ", ")
        upstreamConnectTime = tries.map { $0.connectTime.map(Self.seconds) ?? "-" }.joined(separator: ", ")
        upstreamHeaderTime = tries.map { $0.headerTime.map(Self.seconds) ?? "-" }.joined(separator: ", ")
        upstreamResponseLength = tries.map { String($0.responseLength) }.joined(separator: ", ")
    }

    /// As the front's module variables are named.
    public var byName: [(String, String)] {
        [("upstream_addr", upstreamAddr), ("upstream_status", upstreamStatus),
         ("upstream_response_time", upstreamResponseTime), ("upstream_connect_time", upstreamConnectTime),
         ("upstream_header_time", upstreamHeaderTime), ("upstream_response_length", upstreamResponseLength)]
            + responseHeaders.map { ($0.key, $0.value) }
    }

    /// The `$upstream_http_*` variables of a response head.
    static func responseHeaderVariables(_ head: UpstreamResponseHead) -> [String: String] {
        var variables: [String: String] = [:]
        for field in head.fields {
            let name = "upstream_http_" + String(head.name(field).lowercased().map { $0 == "-" ? "_" : $0 })
            let value = head.value(field)
            if let previous = variables[name] {
                variables[name] = previous + ", " + value
            } else {
                variables[name] = value
            }
        }
        return variables
    }

    /// Seconds with millisecond resolution, as nginx prints them (`0.004`).
    static func seconds(_ value: Double) -> String {
        let millis = max(0, Int((value * 1000).rounded()))
        let fraction = String(millis % 1000)
        return "\(millis / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}

/// A client side that records the proxy's variables for the access log (`log_format` using
/// `$upstream_addr` …). The front's exchange adopts this when it has a slot for them.
public protocol ProxyVariableSink: AnyObject {
    /// False when nothing reads them (no access log): the proxy then does not format them.
    var wantsUpstreamVariables: Bool { get }
    func setUpstreamVariables(_ values: UpstreamVariableValues)
}

/// A client connection that can turn into a byte tunnel after `101 Switching Protocols`,
/// for WebSocket passthrough (`proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";`).
public protocol ProxyTunnelClient: ProxyClient {
    /// Sends the 101 head as given (with its `Upgrade`/`Connection`), stops HTTP parsing on the
    /// client connection, and from then on hands every byte the client sends to `onBytes`
    /// (`nil` once the client closed). `pauseBody`/`resumeBody` pause and resume those reads.
    func switchToTunnel(_ head: HTTPResponseHead, onBytes: @escaping (ByteBuffer?) -> Void)
    /// Writes tunnel bytes to the client; the future completes once written.
    @discardableResult func sendTunnelBytes(_ bytes: ByteBuffer) -> EventLoopFuture<Void>
    /// Closes the client connection (the tunnel is over).
    func closeTunnel()
}
