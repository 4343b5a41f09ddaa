import Foundation
import Synchronization

/// Date formats of HTTP headers and nginx logs. The `Date` header changes once
/// a second, so its text is cached per second instead of formatted per response.
public enum HTTPDate {
    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))

    private static func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate).
    public static func rfc1123(_ seconds: Int) -> String {
        var t = time_t(seconds)
        var tm = tm()
        gmtime_r(&t, &tm)
        return "\(weekdays[Int(tm.tm_wday)]), \(two(tm.tm_mday)) \(months[Int(tm.tm_mon)]) \(tm.tm_year + 1900) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) GMT"
    }

    /// The current time as an IMF-fixdate, cached for the current second.
    public static func now() -> String {
        let second = Int(time(nil))
        return cache.withLock { entry in
            if entry.second != second {
                entry = (second, rfc1123(second))
            }
            return entry.text
        }
    }

    /// Parses the three date forms HTTP allows (IMF-fixdate, RFC 850, asctime); nil when invalid.
    public static func parse(_ text: String) -> Int? {
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" || $0 == ":" })
        guard tokens.count >= 7 else { return nil }
        var day: Int?, month: Int?, year: Int?, hour: Int?, minute: Int?, second: Int?
        if let m = months.firstIndex(of: String(tokens[1])) {
            // asctime: Sun Nov  6 08:49:37 1994
            month = m; day = Int(tokens[2]); hour = Int(tokens[3]); minute = Int(tokens[4]); second = Int(tokens[5]); year = Int(tokens[6])
        } else {
            day = Int(tokens[1]); month = months.firstIndex(of: String(tokens[2])); year = Int(tokens[3])
            hour = Int(tokens[4]); minute = Int(tokens[5]); second = Int(tokens[6])
            if let y = year, tokens[3].count == 2 { year = y < 70 ? 2000 + y : 1900 + y }
        }
        guard let day, let month, let year, let hour, let minute, let second,
              (1...31).contains(day), (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second), year >= 1970
        else { return nil }
        var tm = tm()
        tm.tm_year = Int32(year - 1900)
        tm.tm_mon = Int32(month)
        tm.tm_mday = Int32(day)
        tm.tm_hour = Int32(hour)
        tm.tm_min = Int32(minute)
        tm.tm_sec = Int32(second)
        return Int(timegm(&tm))
    }

    private static func zone(_ tm: tm) -> (sign: String, hours: String, minutes: String) {
        let offset = tm.tm_gmtoff
        let sign = offset < 0 ? "-" : "+"
        let magnitude = abs(offset)
        return (sign, two(Int32(magnitude / 3600)), two(Int32((magnitude % 3600) / 60)))
    }

    /// `$time_local`: `21/Nov/2026:15:04:05 +0000`.
    public static func commonLogFormat(_ seconds: Double) -> String {
        var t = time_t(seconds)
        var tm = tm()
        localtime_r(&t, &tm)
        let z = zone(tm)
        return "\(two(tm.tm_mday))/\(months[Int(tm.tm_mon)])/\(tm.tm_year + 1900):\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) \(z.sign)\(z.hours)\(z.minutes)"
    }

    /// `$time_iso8601`: `2026-11-21T15:04:05+00:00`.
    public static func iso8601(_ seconds: Double) -> String {
        var t = time_t(seconds)
        var tm = tm()
        localtime_r(&t, &tm)
        let z = zone(tm)
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))T\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))\(z.sign)\(z.hours):\(z.minutes)"
    }

    /// error_log's timestamp: `2026/11/21 15:04:05`.
    public static func errorLogFormat(_ seconds: Double) -> String {
        var t = time_t(seconds)
        var tm = tm()
        localtime_r(&t, &tm)
        return "\(tm.tm_year + 1900)/\(two(tm.tm_mon + 1))/\(two(tm.tm_mday)) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec))"
    }
}
