/// The typed configuration: what `gantry -t` checks and what the running
/// stack is built from. Every block keeps its `ConfigScope`, so any module
/// reads inherited values (`scope.effective("root")`) without this module
/// knowing about every directive.
public struct Configuration: Sendable {
    /// Main-context scope (`worker_processes`, `pid`, `error_log`, …).
    public var main: ConfigScope
    /// The whole tree as parsed, includes expanded (for `-T` and for modules with their own blocks).
    public var directives: [Directive]
    public var http: HTTPBlock?
    /// nginx's prefix (`-p`): relative paths in directives (`root html;`) are relative to it. Ends in `/`.
    public var prefix: String
    /// The main configuration file, as an absolute path.
    public var configFile: String
    /// Every file read, in order, each once (for `gantry -T`).
    public var files: [ConfigFile]
    /// Remarks to print as `[warn]` lines (directives that have no effect in Gantry, …).
    public var warnings: [ConfigWarning]
    /// nginx's `-e`: the error log to use until the configuration's `error_log` is open (`stderr` allowed).
    public var commandLineErrorLog: String?

    public init(main: ConfigScope, directives: [Directive], http: HTTPBlock?,
                prefix: String = "/", configFile: String = "", files: [ConfigFile] = [], warnings: [ConfigWarning] = []) {
        self.main = main
        self.directives = directives
        self.http = http
        self.prefix = prefix
        self.configFile = configFile
        self.files = files
        self.warnings = warnings
    }

    /// A path from a directive, made absolute against the prefix as nginx does (`ngx_conf_full_name`).
    public func fullPath(_ path: String) -> String {
        path.hasPrefix("/") ? path : prefix + path
    }
}

public struct HTTPBlock: Sendable {
    public var scope: ConfigScope
    public var servers: [ServerBlock]
    public var upstreams: [UpstreamBlock]
    public var appPools: [AppPoolBlock]

    public init(scope: ConfigScope, servers: [ServerBlock], upstreams: [UpstreamBlock], appPools: [AppPoolBlock]) {
        self.scope = scope
        self.servers = servers
        self.upstreams = upstreams
        self.appPools = appPools
    }
}

public struct ServerBlock: Sendable {
    public var scope: ConfigScope
    public var location: SourceLocation
    public var listens: [ListenAddress]
    public var names: [ServerName]
    /// Top-level locations in config order (named `@` locations included).
    public var locations: [LocationBlock]

    public init(scope: ConfigScope, location: SourceLocation, listens: [ListenAddress], names: [ServerName], locations: [LocationBlock]) {
        self.scope = scope
        self.location = location
        self.listens = listens
        self.names = names
        self.locations = locations
    }
}

public struct LocationBlock: Sendable {
    public var scope: ConfigScope
    public var match: LocationMatch
    public var location: SourceLocation
    public var nested: [LocationBlock]

    public init(scope: ConfigScope, match: LocationMatch, location: SourceLocation, nested: [LocationBlock]) {
        self.scope = scope
        self.match = match
        self.location = location
        self.nested = nested
    }
}

/// The five `location` forms.
public enum LocationMatch: Sendable, Hashable {
    /// `location = /uri`
    case exact(String)
    /// `location /uri`, or `location ^~ /uri` when `stopsRegexSearch`.
    case prefix(String, stopsRegexSearch: Bool)
    /// `location ~ re` / `location ~* re`
    case regex(String, caseInsensitive: Bool)
    /// `location @name`
    case named(String)
}

/// One `listen` directive.
public struct ListenAddress: Sendable, Hashable {
    public enum Endpoint: Sendable, Hashable {
        /// `host` is nil for "all addresses" (`listen 80;`); IPv6 hosts are written without brackets.
        case tcp(host: String?, port: Int)
        case unix(path: String)
    }

    public var endpoint: Endpoint
    public var isDefaultServer: Bool
    /// Other parameters as written (`backlog=`, `reuseport`, `ipv6only=` …).
    public var parameters: [String]
    public var location: SourceLocation

    public init(endpoint: Endpoint, isDefaultServer: Bool = false, parameters: [String] = [], location: SourceLocation) {
        self.endpoint = endpoint
        self.isDefaultServer = isDefaultServer
        self.parameters = parameters
        self.location = location
    }
}

/// One `server_name` value.
public enum ServerName: Sendable, Hashable {
    case exact(String)
    /// `*.example.com` or `.example.com` (which also matches `example.com`).
    case leadingWildcard(String)
    /// `www.example.*`
    case trailingWildcard(String)
    /// `~^(?<name>.+)\.example\.com$`
    case regex(String)
}

public struct UpstreamBlock: Sendable {
    public var name: String
    public var scope: ConfigScope
    public var location: SourceLocation

    public init(name: String, scope: ConfigScope, location: SourceLocation) {
        self.name = name
        self.scope = scope
        self.location = location
    }
}

public struct AppPoolBlock: Sendable {
    public var name: String
    public var scope: ConfigScope
    public var location: SourceLocation

    public init(name: String, scope: ConfigScope, location: SourceLocation) {
        self.name = name
        self.scope = scope
        self.location = location
    }
}
