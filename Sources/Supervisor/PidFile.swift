#if canImport(Glibc)
import Glibc
#endif

/// The master's pid file (`--pid`, nginx's `pid`): written at start, removed at exit
/// only if it still holds our pid (a newer master may have replaced it).
public struct PidFile: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public func write(pid: Int32 = getpid()) throws(SystemError) {
        let temporary = "\(path).\(pid).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError("open \(temporary)", errno) }
        let text = Array("\(pid)\n".utf8)
        let written = text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == text.count else { unlink(temporary); throw SystemError("write \(temporary)", errno) }
        guard rename(temporary, path) == 0 else { unlink(temporary); throw SystemError("rename \(path)", errno) }
    }

    public func read() -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 32)
        let count = Glibc.read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: " \n"))
    }

    public func remove(pid: Int32 = getpid()) {
        if read() == pid { unlink(path) }
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        let drop = Set(set)
        return String(self.drop { drop.contains($0) }.reversed().drop { drop.contains($0) }.reversed())
    }
}
