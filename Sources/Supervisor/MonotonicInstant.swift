#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point on the monotonic clock, in seconds.
///
/// The state machines take time as an argument (never read a clock), so tests
/// drive them through boot timeouts, heartbeats and back-off without sleeping.
public struct MonotonicInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var seconds: Double

    public init(seconds: Double) {
        self.seconds = seconds
    }

    /// Now, from `CLOCK_MONOTONIC` (unaffected by wall-clock changes).
    public static func now() -> MonotonicInstant {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return MonotonicInstant(seconds: Double(spec.tv_sec) + Double(spec.tv_nsec) / 1_000_000_000)
    }

    public static func < (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Bool {
        lhs.seconds < rhs.seconds
    }

    public static func + (lhs: MonotonicInstant, rhs: Double) -> MonotonicInstant {
        MonotonicInstant(seconds: lhs.seconds + rhs)
    }

    public static func - (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Double {
        lhs.seconds - rhs.seconds
    }

    public var description: String { "t=\(seconds)" }
}
