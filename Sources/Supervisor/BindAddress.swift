#if canImport(Glibc)
import Glibc
#endif

/// A `--bind` value as gunicorn reads it: `HOST:PORT`, `[IPV6]:PORT`, `:PORT`, `HOST` (port 8000),
/// `unix:PATH`, or `fd://N` (an already-open listening socket).
public enum BindAddress: Equatable, Sendable, CustomStringConvertible {
    case tcp(host: String, port: Int)
    case unix(path: String)
    case fileDescriptor(Int32)

    public struct ParseError: Error, Equatable, CustomStringConvertible, Sendable {
        public var value: String
        public var description: String { "invalid --bind address \"\(value)\" (expected HOST:PORT, unix:PATH or fd://N)" }
    }

    public init(parsing value: String) throws(ParseError) {
        if value.hasPrefix("unix:") {
            var path = String(value.dropFirst(5))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else { throw ParseError(value: value) }
            self = .unix(path: path)
            return
        }
        if value.hasPrefix("fd://") {
            guard let fd = Int32(value.dropFirst(5)), fd >= 0 else { throw ParseError(value: value) }
            self = .fileDescriptor(fd)
            return
        }
        var host = value
        var port = 8000
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]") else { throw ParseError(value: value) }
            host = String(value[value.index(after: value.startIndex)..<close])
            let rest = value[value.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let parsed = Int(rest.dropFirst()) else { throw ParseError(value: value) }
                port = parsed
            }
        } else if let colon = value.lastIndex(of: ":") {
            host = String(value[..<colon])
            guard let parsed = Int(value[value.index(after: colon)...]) else { throw ParseError(value: value) }
            port = parsed
        }
        guard (0...65535).contains(port) else { throw ParseError(value: value) }
        self = .tcp(host: host.isEmpty ? "0.0.0.0" : host, port: port)
    }

    /// As gunicorn's "Listening at:" line prints it.
    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        case .fileDescriptor(let fd): "fd://\(fd)"
        }
    }
}

/// A listening socket the master owns and lends to its workers.
public struct ListeningSocket: Sendable {
    public var address: BindAddress
    public var fd: Int32

    /// Binds and listens (`CLOEXEC`; workers get it through ``WorkerLauncher``).
    /// A stale Unix socket file is replaced, as gunicorn does; anything else at that path is an error.
    public static func bind(_ address: BindAddress, backlog: Int32 = 2048, umask mode: mode_t? = nil) throws(SystemError) -> ListeningSocket {
        switch address {
        case .fileDescriptor(let fd):
            guard fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 else { throw SystemError("fd://\(fd)", errno) }
            return ListeningSocket(address: address, fd: fd)
        case .unix(let path):
            var info = stat()
            if lstat(path, &info) == 0 {
                guard (info.st_mode & S_IFMT) == S_IFSOCK else { throw SystemError("bind \(path): exists and is not a socket", EEXIST) }
                unlink(path)
            }
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SystemError("socket", errno) }
            var storage = sockaddr_un()
            storage.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: storage.sun_path) else {
                Glibc.close(fd)
                throw SystemError("bind \(path): path too long", ENAMETOOLONG)
            }
            withUnsafeMutableBytes(of: &storage.sun_path) { raw in
                for (index, byte) in bytes.enumerated() { raw[index] = byte }
            }
            let previous = mode.map { umask($0) }
            let result = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            let bindErrno = errno
            if let previous { umask(previous) }
            guard result == 0 else { Glibc.close(fd); throw SystemError("bind \(path)", bindErrno) }
            guard listen(fd, backlog) == 0 else { Glibc.close(fd); throw SystemError("listen \(path)", errno) }
            return ListeningSocket(address: address, fd: fd)
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            hints.ai_flags = AI_PASSIVE
            var list: UnsafeMutablePointer<addrinfo>?
            let status = getaddrinfo(host, String(port), &hints, &list)
            guard status == 0, let first = list else {
                throw SystemError("resolve \(host): \(String(cString: gai_strerror(status)))", EINVAL)
            }
            defer { freeaddrinfo(list) }
            var lastError = SystemError("bind \(host):\(port)", EADDRNOTAVAIL)
            var entry: UnsafeMutablePointer<addrinfo>? = first
            while let current = entry {
                entry = current.pointee.ai_next
                let fd = socket(current.pointee.ai_family, current.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), current.pointee.ai_protocol)
                guard fd >= 0 else { lastError = SystemError("socket", errno); continue }
                var one: Int32 = 1
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                if current.pointee.ai_family == AF_INET6 {
                    setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
                }
                guard Glibc.bind(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0 else {
                    lastError = SystemError("bind \(host):\(port)", errno)
                    Glibc.close(fd)
                    continue
                }
                guard listen(fd, backlog) == 0 else {
                    lastError = SystemError("listen \(host):\(port)", errno)
                    Glibc.close(fd)
                    continue
                }
                return ListeningSocket(address: .tcp(host: host, port: boundPort(fd) ?? port), fd: fd)
            }
            throw lastError
        }
    }

    /// Closes it; a Unix socket's file is removed too (the master created it).
    public func close() {
        _ = Glibc.close(fd)
        if case .unix(let path) = address { unlink(path) }
    }

    private static func boundPort(_ fd: Int32) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return nil }
        return withUnsafePointer(to: &storage) { pointer -> Int? in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            case AF_INET6:
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            default:
                return nil
            }
        }
    }
}
