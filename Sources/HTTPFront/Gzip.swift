import CNIOExtrasZlib
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// On-the-fly `gzip` of a whole file, done on the thread pool and cached per
/// event loop by (inode, mtime, size, level), so a busy text file is
/// compressed once, not per request.
enum Gzip {
    /// Larger files are sent uncompressed rather than held compressed in memory.
    static let maximumSize = 8 * 1024 * 1024

    static func compress(file: OpenFile, level: Int32) -> ByteBuffer? {
        var input: ByteBuffer
        if let contents = file.contents {
            input = contents
        } else {
            guard file.size <= maximumSize else { return nil }
            input = ByteBufferAllocator().buffer(capacity: file.size)
            let read = input.writeWithUnsafeMutableBytes(minimumWritableBytes: file.size) { pointer in
                max(0, pread(file.descriptor, pointer.baseAddress, file.size, 0))
            }
            guard read == file.size else { return nil }
        }
        return compress(input, level: level)
    }

    static func compress(_ input: ByteBuffer, level: Int32) -> ByteBuffer? {
        var stream = cnioextras_z_stream()
        stream.zalloc = nil
        stream.zfree = nil
        stream.opaque = nil
        // windowBits 16 + 15: a gzip wrapper, as nginx's gzip filter sends.
        guard CNIOExtrasZlib_deflateInit2(&stream, level, CNIOEXTRAS_Z_DEFLATED, 31, 8, CNIOEXTRAS_Z_DEFAULT_STRATEGY) == CNIOEXTRAS_Z_OK else {
            return nil
        }
        defer { cnioextras_z_deflateEnd(&stream) }
        let bound = Int(cnioextras_z_deflateBound(&stream, UInt(input.readableBytes))) + 32
        var output = ByteBufferAllocator().buffer(capacity: bound)
        var input = input
        var rc: Int32 = CNIOEXTRAS_Z_OK
        input.withUnsafeMutableReadableBytes { inPointer in
            stream.next_in = inPointer.baseAddress?.assumingMemoryBound(to: UInt8.self)
            stream.avail_in = UInt32(inPointer.count)
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { outPointer in
                stream.next_out = outPointer.baseAddress!.assumingMemoryBound(to: UInt8.self)
                stream.avail_out = UInt32(outPointer.count)
                rc = cnioextras_z_deflate(&stream, CNIOEXTRAS_Z_FINISH)
                return outPointer.count - Int(stream.avail_out)
            }
        }
        return rc == CNIOEXTRAS_Z_STREAM_END ? output : nil
    }
}
