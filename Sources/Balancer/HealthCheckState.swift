/// The verdict of active health checks for one peer (nginx Plus's `health_check`
/// `fails=` / `passes=`): consecutive results flip a peer down or back up.
/// A peer starts healthy, as nginx Plus treats a server without `mandatory`.
public struct HealthCheckState: Sendable, Equatable {
    public let failsToMarkDown: Int
    public let passesToMarkUp: Int
    public private(set) var isHealthy = true
    public private(set) var consecutiveFails = 0
    public private(set) var consecutivePasses = 0

    public enum Transition: Sendable, Equatable {
        case becameHealthy
        case becameUnhealthy
    }

    public init(fails: Int = 1, passes: Int = 1) {
        failsToMarkDown = max(1, fails)
        passesToMarkUp = max(1, passes)
    }

    /// Records one check; returns the transition when the peer's state changes.
    public mutating func record(passed: Bool) -> Transition? {
        if passed {
            consecutivePasses += 1
            consecutiveFails = 0
            if !isHealthy, consecutivePasses >= passesToMarkUp {
                isHealthy = true
                return .becameHealthy
            }
        } else {
            consecutiveFails += 1
            consecutivePasses = 0
            if isHealthy, consecutiveFails >= failsToMarkDown {
                isHealthy = false
                return .becameUnhealthy
            }
        }
        return nil
    }

    /// nginx Plus counts a check as passed when the status is 2xx or 3xx (without a `match` block).
    public static func passes(status: Int) -> Bool { (200..<400).contains(status) }
}
