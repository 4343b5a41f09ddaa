#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import NginxConfig

/// Binds the front's event-loop threads to CPUs (`worker_cpu_affinity`).
///
/// Why Gantry binds by default when there is one loop per CPU: its loops are threads of one
/// process that rarely block under load, and the kernel may then stack two of them on one core
/// while the other core runs the client and the upstream. A loop that does not block is only
/// preempted at the scheduler tick, so each request of the other loop waits up to a tick (4 ms at
/// HZ=250): that was the proxy's whole p99 gap to nginx (docs/architecture.md).
enum LoopAffinity {
    #if os(Linux)
    /// glibc's `sched_getaffinity`/`sched_setaffinity` (Swift's Glibc module leaves out the
    /// `_GNU_SOURCE` declarations, so they are looked up by name).
    private typealias AffinityCall = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> CInt
    private static let getAffinity = lookUp("sched_getaffinity")
    private static let setAffinity = lookUp("sched_setaffinity")

    private static func lookUp(_ name: String) -> AffinityCall? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { return nil }
        return unsafeBitCast(symbol, to: AffinityCall.self)
    }
    #endif

    /// The CPUs this process may run on, ascending (empty where the platform cannot tell).
    static func usableCPUs() -> [Int] {
        #if os(Linux)
        var set = cpu_set_t()
        guard let getAffinity, getAffinity(0, MemoryLayout<cpu_set_t>.size, &set) == 0 else { return [] }
        return withUnsafeBytes(of: &set) { raw in
            var cpus: [Int] = []
            for (byteIndex, byte) in raw.enumerated() where byte != 0 {
                for bit in 0..<8 where byte & (1 << bit) != 0 { cpus.append(byteIndex * 8 + bit) }
            }
            return cpus
        }
        #else
        return []
        #endif
    }

    /// Binds the calling thread to `cpus`; the error text when the kernel refuses.
    static func bindCurrentThread(to cpus: [Int]) -> String? {
        #if os(Linux)
        var set = cpu_set_t()
        let capacity = MemoryLayout<cpu_set_t>.size * 8
        withUnsafeMutableBytes(of: &set) { raw in
            for cpu in cpus where cpu < capacity { raw[cpu / 8] |= UInt8(1 << (cpu % 8)) }
        }
        guard let setAffinity else { return "sched_setaffinity not found" }
        guard setAffinity(0, MemoryLayout<cpu_set_t>.size, &set) == 0 else {
            return String(cString: strerror(errno))
        }
        return nil
        #else
        return "not supported on this platform"
        #endif
    }

    /// Binds each loop of `group` as `affinity` says, waiting until every loop has done it.
    static func apply(_ affinity: CPUAffinity, to group: MultiThreadedEventLoopGroup, logger: Logger) {
        let loops = Array(group.makeIterator())
        let plan = affinity.binding(loopCount: loops.count, usable: usableCPUs())
        for (index, (loop, cpus)) in zip(loops, plan).enumerated() {
            guard let cpus else { continue }
            let failure = try? loop.submit { bindCurrentThread(to: cpus) }.wait()
            if let failure = failure ?? nil {
                logger.warning("sched_setaffinity() to CPUs \(cpus) for event loop \(index) failed (\(failure))")
            } else {
                logger.info("event loop \(index) bound to CPU \(cpus.map(String.init).joined(separator: ","))")
            }
        }
    }
}
