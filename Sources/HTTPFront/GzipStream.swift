import CNIOExtrasZlib
import NIOCore

/// On-the-fly gzip of a response whose body arrives in pieces (a content module's, e.g. a
/// proxied app's answer), as nginx's gzip filter does. Each piece is compressed and flushed
/// (`Z_SYNC_FLUSH`) as it comes, so a streamed answer is not held back waiting for more bytes
/// (nginx may hold it until its gzip buffers fill); `finish()` writes the gzip trailer.
final class GzipStream {
    private var stream = cnioextras_z_stream()
    private var open = false

    init?(level: Int32) {
        stream.zalloc = nil
        stream.zfree = nil
        stream.opaque = nil
        // windowBits 16 + 15: a gzip wrapper.
        guard CNIOExtrasZlib_deflateInit2(&stream, level, CNIOEXTRAS_Z_DEFLATED, 31, 8, CNIOEXTRAS_Z_DEFAULT_STRATEGY) == CNIOEXTRAS_Z_OK else {
            return nil
        }
        open = true
    }

    deinit {
        if open { cnioextras_z_deflateEnd(&stream) }
    }

    /// The compressed form of `input` so far (possibly a few bytes only).
    func compress(_ input: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        deflate(input, flush: CNIOEXTRAS_Z_SYNC_FLUSH, allocator: allocator)
    }

    /// The rest of the stream and the gzip trailer.
    func finish(allocator: ByteBufferAllocator) -> ByteBuffer {
        let tail = deflate(ByteBuffer(), flush: CNIOEXTRAS_Z_FINISH, allocator: allocator)
        if open {
            cnioextras_z_deflateEnd(&stream)
            open = false
        }
        return tail
    }

    private func deflate(_ input: ByteBuffer, flush: Int32, allocator: ByteBufferAllocator) -> ByteBuffer {
        guard open else { return ByteBuffer() }
        var input = input
        var output = allocator.buffer(capacity: Int(cnioextras_z_deflateBound(&stream, UInt(input.readableBytes))) + 64)
        input.withUnsafeMutableReadableBytes { inPointer in
            stream.next_in = inPointer.baseAddress?.assumingMemoryBound(to: UInt8.self)
            stream.avail_in = UInt32(inPointer.count)
            // Sync and finish flushes may need more room than the bound when called repeatedly: loop until done.
            while true {
                var rc: Int32 = CNIOEXTRAS_Z_OK
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 4096) { outPointer in
                    stream.next_out = outPointer.baseAddress!.assumingMemoryBound(to: UInt8.self)
                    stream.avail_out = UInt32(outPointer.count)
                    rc = cnioextras_z_deflate(&stream, flush)
                    return outPointer.count - Int(stream.avail_out)
                }
                if rc == CNIOEXTRAS_Z_STREAM_END || rc < 0 { break }
                if stream.avail_in == 0 && stream.avail_out > 0 { break }
            }
            stream.next_in = nil
        }
        return output
    }
}
