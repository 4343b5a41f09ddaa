#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOCore
import NIOPosix

/// Bytes one side of the proxy produced faster than the other takes them: in memory up to a
/// bound, then in an unlinked temp file (nginx's `proxy_temp_path` / `client_body_temp_path`),
/// never in unbounded memory.
///
/// Two uses: the response of `proxy_buffering on` (`consumable`: what went to the client is
/// dropped, so a slow client no longer holds the upstream connection — an app worker — until it
/// has read everything), and the request body of `proxy_request_buffering on` (`replayable`: read
/// whole before the first try, sent again on a retry). File I/O runs on a thread pool; the spool
/// itself lives on one event loop.
final class BodySpool {
    enum Mode { case consumable, replayable }

    private struct Segment {
        let id: Int
        let length: Int
        /// The bytes while in memory (also while being written to the file).
        var buffer: ByteBuffer?
        /// Where the bytes are (or are being) written in the temp file.
        var fileOffset: Int64?
        var onDisk = false
    }

    let mode: Mode
    private var ledger: SpoolLedger
    private var segments = CircularBuffer<Segment>()
    /// The id of `segments.first` (a consumable spool drops segments from the front only).
    private var firstID = 0
    private var nextID = 0
    private let directory: String
    private let loop: any EventLoop
    private let threadPool: NIOThreadPool
    private let logger: Logger
    /// The temp file's descriptor, once made (lazily, at the first byte for the file).
    private var file: EventLoopFuture<CInt>?
    private var descriptor: CInt?
    private var writesInFlight = 0
    private var closed = false
    private(set) var totalBytes: Int64 = 0
    /// Set when the temp file could not be made or written (the error is logged once).
    private(set) var fileFailed = false
    /// Called on the loop after a file write ended (memory was freed, or the file failed).
    var onProgress: (() -> Void)?

    init(mode: Mode, memoryLimit: Int, fileLimit: Int64, writeLimit: Int, directory: String,
         loop: any EventLoop, threadPool: NIOThreadPool = .singleton, logger: Logger) {
        self.mode = mode
        ledger = SpoolLedger(memoryLimit: memoryLimit, fileLimit: fileLimit, writeLimit: max(writeLimit, 64 * 1024))
        self.directory = directory
        self.loop = loop
        self.threadPool = threadPool
        self.logger = logger
    }

    var isEmpty: Bool { segments.isEmpty }
    var acceptsMore: Bool { ledger.acceptsMore }
    /// Whether every byte handed to the file has been written (or the write failed).
    var writesDone: Bool { writesInFlight == 0 }
    /// Bytes in the temp file so far (for tests and logs).
    var fileLength: Int64 { ledger.fileLength }

    func append(_ buffer: ByteBuffer) {
        guard !closed, buffer.readableBytes > 0 else { return }
        let id = nextID
        nextID += 1
        totalBytes += Int64(buffer.readableBytes)
        switch ledger.place(buffer.readableBytes) {
        case .memory:
            segments.append(Segment(id: id, length: buffer.readableBytes, buffer: buffer))
        case .file(let offset):
            segments.append(Segment(id: id, length: buffer.readableBytes, buffer: buffer, fileOffset: offset))
            write(buffer, at: offset, segment: id)
        }
    }

    /// Consumable spool: takes the next part to send, or nil when nothing is ready. Bytes still in
    /// memory go as a buffer; bytes only on disk as one file region over as many contiguous
    /// segments as are written. The caller closes `handle` once the region was sent.
    func takeNext() -> (data: IOData, handle: NIOFileHandle?)? {
        precondition(mode == .consumable)
        guard var first = segments.first else { return nil }
        if let buffer = first.buffer {
            segments.removeFirst()
            firstID += 1
            if first.fileOffset == nil { ledger.sentFromMemory(first.length) }
            // A segment still being written is sent from memory; its write's end finds it gone.
            first.buffer = nil
            return (.byteBuffer(buffer), nil)
        }
        guard first.onDisk, let offset = first.fileOffset else { return nil }
        var end = offset + Int64(first.length)
        segments.removeFirst()
        firstID += 1
        while let next = segments.first, next.onDisk, next.buffer == nil, next.fileOffset == end {
            end += Int64(next.length)
            segments.removeFirst()
            firstID += 1
        }
        guard let region = makeRegion(from: offset, to: end) else { return nil }
        return (.fileRegion(region.region), region.handle)
    }

    /// Replayable spool, once `writesDone`: everything in order, memory parts as buffers and the
    /// file as regions. Every call makes new regions (a retry sends them again); the caller
    /// closes each handle once sent. Nil when the file cannot be read back.
    func replayParts() -> [(data: IOData, handle: NIOFileHandle?)]? {
        precondition(mode == .replayable)
        var parts: [(data: IOData, handle: NIOFileHandle?)] = []
        var run: (start: Int64, end: Int64)?
        func flushRun() -> Bool {
            guard let current = run else { return true }
            run = nil
            guard let region = makeRegion(from: current.start, to: current.end) else { return false }
            parts.append((.fileRegion(region.region), region.handle))
            return true
        }
        for segment in segments {
            if let offset = segment.fileOffset, segment.onDisk {
                if let current = run, current.end == offset {
                    run = (current.start, offset + Int64(segment.length))
                } else {
                    guard flushRun() else { return nil }
                    run = (offset, offset + Int64(segment.length))
                }
            } else if let buffer = segment.buffer {
                guard flushRun() else { return nil }
                parts.append((.byteBuffer(buffer), nil))
            }
        }
        guard flushRun() else { return nil }
        return parts
    }

    /// Drops what is left and closes the temp file (regions already handed out keep their own descriptor).
    func close() {
        guard !closed else { return }
        closed = true
        segments.removeAll()
        onProgress = nil
        if let descriptor {
            self.descriptor = nil
            closeDescriptor(descriptor)
        }
        // A file still being made is closed when it is (see `openFile`).
    }

    // MARK: The temp file

    private func makeRegion(from start: Int64, to end: Int64) -> (region: FileRegion, handle: NIOFileHandle)? {
        guard let descriptor else { return nil }
        let copy = dup(descriptor)
        guard copy >= 0 else {
            logger.error("dup() of a temp file in \"\(directory)\" failed (\(errno): \(String(cString: strerror(errno))))")
            return nil
        }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: copy)
        return (FileRegion(fileHandle: handle, readerIndex: Int(start), endIndex: Int(end)), handle)
    }

    private func openFile() -> EventLoopFuture<CInt> {
        if let file { return file }
        let directory = self.directory
        let opened = threadPool.runIfActive(eventLoop: loop) { try TempFile.make(in: directory) }
        file = opened
        opened.assumeIsolated().whenSuccess { [self] descriptor in
            if closed { closeDescriptor(descriptor) } else { self.descriptor = descriptor }
        }
        return opened
    }

    private func write(_ buffer: ByteBuffer, at offset: Int64, segment id: Int) {
        writesInFlight += 1
        let pool = threadPool
        let loop = self.loop
        openFile().flatMap { descriptor in
            pool.runIfActive(eventLoop: loop) { try TempFile.write(buffer, to: descriptor, at: offset) }
        }.assumeIsolated().whenComplete { [self] result in
            writesInFlight -= 1
            guard !closed else { return }
            let index = id - firstID
            let queued = mode == .replayable || (index >= 0 && index < segments.count)
            switch result {
            case .success:
                ledger.fileWriteEnded(buffer.readableBytes, failed: false, stillQueued: queued)
                if queued, segments[offset: index].id == id {
                    segments[offset: index].buffer = nil
                    segments[offset: index].onDisk = true
                }
            case .failure(let error):
                if !fileFailed {
                    fileFailed = true
                    logger.error("cannot buffer to a temp file in \"\(directory)\": \(error)")
                }
                ledger.fileWriteEnded(buffer.readableBytes, failed: true, stillQueued: queued)
                // The bytes stay in memory (the segment still holds them), sent from there.
                if queued, segments[offset: index].id == id { segments[offset: index].fileOffset = nil }
            }
            onProgress?()
        }
    }
}

private func closeDescriptor(_ descriptor: CInt) {
    _ = close(descriptor)
}

/// Blocking temp-file calls, run on a thread pool.
enum TempFile {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// An unlinked temp file in `directory` (made with mode 0700 when missing, as nginx does).
    static func make(in directory: String) throws -> CInt {
        try makeDirectory(directory)
        var template = Array((directory.hasSuffix("/") ? directory : directory + "/").utf8CString.dropLast())
        template.append(contentsOf: Array("gantry.XXXXXXXX".utf8CString))
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { throw failure("open()", directory) }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        unlink(path)
        return descriptor
    }

    static func write(_ buffer: ByteBuffer, to descriptor: CInt, at offset: Int64) throws {
        var written = 0
        let total = buffer.readableBytes
        try buffer.withUnsafeReadableBytes { bytes in
            while written < total {
                let count = pwrite(descriptor, bytes.baseAddress! + written, total - written, off_t(offset) + off_t(written))
                if count < 0 {
                    if errno == EINTR { continue }
                    throw failure("pwrite()", "temp file")
                }
                written += count
            }
        }
    }

    static func makeDirectory(_ path: String) throws {
        var isDirectory = stat()
        if stat(path, &isDirectory) == 0 { return }
        let parent = path.split(separator: "/", omittingEmptySubsequences: true).dropLast().joined(separator: "/")
        if !parent.isEmpty { try makeDirectory("/" + parent) }
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw failure("mkdir()", path) }
    }

    private static func failure(_ call: String, _ path: String) -> Failure {
        let code = errno
        return Failure(description: "\(call) \"\(path)\" failed (\(code): \(String(cString: strerror(code))))")
    }
}
