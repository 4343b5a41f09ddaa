/// The bookkeeping of a `BodySpool`, with no I/O: where the next bytes go (memory or the temp
/// file) and whether the producer may send more. Kept apart so the limits are tested without files
/// or sockets.
///
/// nginx's model (`ngx_event_pipe`): bytes the consumer cannot take yet stay in memory up to
/// `proxy_buffers`, then go to a temp file up to `proxy_max_temp_file_size`; past that the
/// producer waits. Gantry also bounds the bytes queued for writing to the file
/// (`proxy_temp_file_write_size`, at least 64 KiB), so a slow disk slows the producer too.
struct SpoolLedger: Sendable, Equatable {
    enum Placement: Equatable {
        case memory
        /// Written to the temp file at this offset.
        case file(offset: Int64)
    }

    /// Bytes kept in memory before the file is used.
    let memoryLimit: Int
    /// Bytes the file may hold at most (0: no file, memory then backpressure).
    let fileLimit: Int64
    /// Bytes being written to the file at most before the producer waits.
    let writeLimit: Int

    /// Bytes held in memory that are not on their way to the file.
    private(set) var memoryBytes = 0
    /// Bytes handed to the file and not yet written.
    private(set) var writingBytes = 0
    /// The file's length: where the next file bytes go.
    private(set) var fileLength: Int64 = 0
    /// False after the file failed (could not be created or written): memory and backpressure only.
    private(set) var fileUsable: Bool

    init(memoryLimit: Int, fileLimit: Int64, writeLimit: Int) {
        self.memoryLimit = max(0, memoryLimit)
        self.fileLimit = max(0, fileLimit)
        self.writeLimit = max(1, writeLimit)
        fileUsable = fileLimit > 0
    }

    /// Whether the producer may hand over more bytes now.
    var acceptsMore: Bool {
        writingBytes < writeLimit && (memoryBytes < memoryLimit || (fileUsable && fileLength < fileLimit))
    }

    /// Where `count` new bytes go. Memory first; the file once memory is full; memory again
    /// (one read past the bound, after which `acceptsMore` is false) when the file is full or unusable.
    mutating func place(_ count: Int) -> Placement {
        if memoryBytes + count <= memoryLimit || !fileUsable || fileLength + Int64(count) > fileLimit {
            memoryBytes += count
            return .memory
        }
        let offset = fileLength
        fileLength += Int64(count)
        writingBytes += count
        return .file(offset: offset)
    }

    /// Bytes placed in memory went to the consumer.
    mutating func sentFromMemory(_ count: Int) {
        memoryBytes -= count
    }

    /// A file write of `count` bytes ended. A failed write leaves the file unused from now on,
    /// and its bytes, when still queued for the consumer, count as memory again.
    mutating func fileWriteEnded(_ count: Int, failed: Bool, stillQueued: Bool) {
        writingBytes -= count
        guard failed else { return }
        fileUsable = false
        if stillQueued { memoryBytes += count }
    }
}
