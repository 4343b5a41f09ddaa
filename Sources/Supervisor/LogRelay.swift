#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Carries what workers of another account write to stderr into the error log file.
///
/// Such a worker may not be allowed to open the log (it belongs to the front's account), and a
/// descriptor opened for it once would keep pointing at the rotated file after `-s reopen`. So
/// its stderr is this pipe instead; a thread of the master copies it into the file, which the
/// master re-opens on `USR1` like its own. Each worker writes a line with one `write(2)` of at
/// most `PIPE_BUF` bytes, which a pipe keeps whole, so lines of several workers never mix.
public final class LogRelay: @unchecked Sendable {  // the file descriptor number never changes; reopen dup2s onto it
    /// The pipe's write end: the workers' stderr.
    public let writeFD: Int32
    private let readFD: Int32
    private let path: String
    private let fileFD: Int32

    public init(path: String) throws(SystemError) {
        let file = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw SystemError("open() \"\(path)\"", errno) }
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            close(file)
            throw SystemError("pipe", errno)
        }
        // Spawns close every descriptor they do not pass, so the short window before CLOEXEC leaks nothing.
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        readFD = ends[0]
        writeFD = ends[1]
        fileFD = file
        self.path = path
        let thread = Thread { [readFD, fileFD] in Self.copy(from: readFD, to: fileFD) }
        thread.name = "gantry-log-relay"
        thread.start()
    }

    /// For logrotate: later lines go to a new file at the same path.
    public func reopen() {
        let fresh = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fresh >= 0 else { return }
        _ = dup2(fresh, fileFD)
        _ = fcntl(fileFD, F_SETFD, FD_CLOEXEC)
        close(fresh)
    }

    /// Runs for the life of the process (this process keeps the write end for the next workers).
    private static func copy(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(source, &buffer, buffer.count)
            if count == 0 { return }
            if count < 0 {
                if errno == EINTR { continue }
                return
            }
            var offset = 0
            while offset < count {
                let written = buffer[offset..<count].withUnsafeBytes { write(destination, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { break }
                offset += written
            }
        }
    }
}
