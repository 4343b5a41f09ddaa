#if canImport(Glibc)
import Glibc
#endif

/// One message with descriptors attached (`SCM_RIGHTS`) over a Unix socket; the CMSG_* macros,
/// which Swift cannot import, are spelled out for Linux's layout.
enum DescriptorPassing {
    private static let headerSize = MemoryLayout<cmsghdr>.size
    private static func align(_ length: Int) -> Int {
        let unit = MemoryLayout<Int>.size
        return (length + unit - 1) & ~(unit - 1)
    }

    static func send(_ socket: Int32, _ bytes: [UInt8], descriptors: [Int32]) throws(SystemError) {
        let dataLength = descriptors.count * MemoryLayout<Int32>.size
        var control = [UInt8](repeating: 0, count: descriptors.isEmpty ? 0 : align(headerSize) + align(dataLength))
        var payload = bytes.isEmpty ? [0] : bytes
        let sent = payload.withUnsafeMutableBytes { data -> Int in
            control.withUnsafeMutableBytes { controlBytes -> Int in
                var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer -> Int in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    if !descriptors.isEmpty {
                        let header = controlBytes.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                        header.pointee.cmsg_len = align(headerSize) + dataLength
                        header.pointee.cmsg_level = SOL_SOCKET
                        header.pointee.cmsg_type = Int32(SCM_RIGHTS)
                        let slots = (controlBytes.baseAddress! + align(headerSize)).assumingMemoryBound(to: Int32.self)
                        for (index, fd) in descriptors.enumerated() { slots[index] = fd }
                        message.msg_control = controlBytes.baseAddress
                        message.msg_controllen = controlBytes.count
                    }
                    var result: Int
                    repeat { result = sendmsg(socket, &message, Int32(MSG_NOSIGNAL)) } while result < 0 && errno == EINTR
                    return result
                }
            }
        }
        guard sent >= 0 else { throw SystemError("sendmsg", errno) }
    }

    /// One message and the descriptors that came with it (`CLOEXEC`); nil at end-of-file.
    static func receive(_ socket: Int32, maximumDescriptors: Int = 16) throws(SystemError) -> (bytes: [UInt8], descriptors: [Int32])? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var control = [UInt8](repeating: 0, count: align(headerSize) + align(maximumDescriptors * MemoryLayout<Int32>.size))
        var descriptors: [Int32] = []
        let received = buffer.withUnsafeMutableBytes { data -> Int in
            control.withUnsafeMutableBytes { controlBytes -> Int in
                var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer -> Int in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    var result: Int
                    repeat { result = recvmsg(socket, &message, Int32(MSG_CMSG_CLOEXEC)) } while result < 0 && errno == EINTR
                    if result >= 0, message.msg_controllen >= headerSize {
                        let header = controlBytes.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                        if header.pointee.cmsg_level == SOL_SOCKET, header.pointee.cmsg_type == Int32(SCM_RIGHTS) {
                            let count = (Int(header.pointee.cmsg_len) - align(headerSize)) / MemoryLayout<Int32>.size
                            let slots = (controlBytes.baseAddress! + align(headerSize)).assumingMemoryBound(to: Int32.self)
                            descriptors = (0..<count).map { slots[$0] }
                        }
                    }
                    return result
                }
            }
        }
        guard received >= 0 else { throw SystemError("recvmsg", errno) }
        if received == 0 { return nil }
        return (Array(buffer[0..<received]), descriptors)
    }
}
