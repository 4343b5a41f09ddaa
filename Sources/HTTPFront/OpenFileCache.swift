import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// A file opened for serving: the descriptor stays open while the cache holds
/// it, and each response sends from a `dup` of it, so a response in flight
/// never sees its descriptor closed under it.
final class OpenFile: @unchecked Sendable {
    // Immutable after init; the descriptor is only closed in deinit.
    let descriptor: CInt
    let size: Int
    let modificationTime: Int
    let inode: UInt64
    /// The whole file when it is small: served with one `writev` and no descriptor.
    let contents: ByteBuffer?

    init(descriptor: CInt, size: Int, modificationTime: Int, inode: UInt64, contents: ByteBuffer?) {
        self.descriptor = descriptor
        self.size = size
        self.modificationTime = modificationTime
        self.inode = inode
        self.contents = contents
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    /// nginx's ETag: `"<mtime hex>-<size hex>"`.
    var etag: String {
        "\"\(String(modificationTime, radix: 16))-\(String(size, radix: 16))\""
    }

    /// A region for sendfile over a private duplicate of the descriptor.
    func region(from start: Int, to end: Int) -> FileRegion? {
        let copy = dup(descriptor)
        guard copy >= 0 else { return nil }
        return FileRegion(fileHandle: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: copy), readerIndex: start, endIndex: end)
    }
}

/// What the file system says about one path.
enum FileProbe: @unchecked Sendable {
    case file(OpenFile)
    case directory
    case missing
    /// Exists but may not be served: unreadable, or a symlink leaving the root under `disable_symlinks`.
    case forbidden
}

/// How far symlinks may be followed (`disable_symlinks`).
enum SymlinkPolicy: Sendable, Hashable {
    /// `disable_symlinks off` written in the config: follow every link (nginx's default).
    case follow
    /// Gantry's default: follow links that stay inside the root/alias directory, refuse others.
    case insideRoot
    /// `disable_symlinks on`: refuse any path with a symlink in it below the root.
    case refuseAll
}

/// The probes a request needs, keyed by path and policy.
struct ProbeKey: Hashable {
    var path: String
    var base: String
    var policy: SymlinkPolicy
}

/// Probes paths on the real file system. Blocking: called on the thread pool only.
enum FileSystem {
    /// Largest file kept in memory by the open-file cache.
    static let inMemoryLimit = 32 * 1024

    static func probe(_ key: ProbeKey) -> FileProbe {
        var info = stat()
        guard stat(key.path, &info) == 0 else {
            return errno == EACCES ? .forbidden : .missing
        }
        if key.policy != .follow {
            guard let real = realPath(key.path), let realBase = realPath(key.base) else { return .missing }
            let inside = real == realBase || real.hasPrefix(realBase.hasSuffix("/") ? realBase : realBase + "/")
            if !inside { return .forbidden }
            if key.policy == .refuseAll {
                let lexical = key.path.hasSuffix("/") && key.path.count > 1 ? String(key.path.dropLast()) : key.path
                let lexicalBase = key.base.hasSuffix("/") && key.base.count > 1 ? String(key.base.dropLast()) : key.base
                // With no link below the base, the real path is the real base plus the same tail.
                if real.dropFirst(realBase.count) != lexical.dropFirst(lexicalBase.count) { return .forbidden }
            }
        }
        if (info.st_mode & S_IFMT) == S_IFDIR { return .directory }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return .forbidden }
        let fd = open(key.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return errno == EACCES ? .forbidden : .missing }
        var opened = stat()
        guard fstat(fd, &opened) == 0, (opened.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return .forbidden
        }
        let size = Int(opened.st_size)
        var contents: ByteBuffer?
        if size <= inMemoryLimit {
            var buffer = ByteBufferAllocator().buffer(capacity: size)
            let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { pointer in
                let n = pread(fd, pointer.baseAddress, size, 0)
                return max(0, n)
            }
            if read == size { contents = buffer }
        }
        let file = OpenFile(descriptor: contents == nil ? fd : -1, size: size,
                            modificationTime: Int(opened.st_mtim.tv_sec), inode: UInt64(opened.st_ino), contents: contents)
        if contents != nil { close(fd) }
        return .file(file)
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// nginx's `open_file_cache`, always on and short-lived: per event loop (no
/// locks), entries fresh for one second, so the loop itself never calls
/// `open`/`stat` and a busy file costs no syscall but the write. An entry past
/// its second is still answered from while one background probe refreshes it,
/// so a busy file never makes every connection of the loop wait at once.
final class OpenFileCache {
    private struct Entry {
        var probe: FileProbe
        var fresh: NIODeadline
        var lastUsed: NIODeadline
    }

    private var entries: [ProbeKey: Entry] = [:]
    private let validity: TimeAmount
    private let capacity: Int
    /// Entries unused for this long are dropped rather than refreshed.
    private let idleLimit: TimeAmount

    init(validity: TimeAmount = .seconds(1), capacity: Int = 4096, idleLimit: TimeAmount = .seconds(10)) {
        self.validity = validity
        self.capacity = capacity
        self.idleLimit = idleLimit
    }

    /// The cached probe, and whether it is past its second (the caller refreshes it in the background).
    func lookup(_ key: ProbeKey, now: NIODeadline) -> (probe: FileProbe, stale: Bool)? {
        guard var entry = entries[key] else { return nil }
        if entry.lastUsed + idleLimit < now {
            entries[key] = nil
            return nil
        }
        entry.lastUsed = now
        entries[key] = entry
        return (entry.probe, entry.fresh < now)
    }

    func store(_ key: ProbeKey, _ probe: FileProbe, now: NIODeadline) {
        if entries.count >= capacity && entries[key] == nil {
            entries = entries.filter { $0.value.lastUsed + idleLimit >= now }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        }
        entries[key] = Entry(probe: probe, fresh: now + validity, lastUsed: now)
    }
}
