#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// IMF-fixdate for `Date:` headers, and gunicorn's access-log time, formatted
/// once per second.
final class HTTPDate: @unchecked Sendable {
    private let monitor = Monitor()
    private var second = 0
    private var cachedHeader = ""
    private var cachedLog = ""

    static let shared = HTTPDate()

    func header() -> String { refresh(); return monitor.withLock { cachedHeader } }
    func logTime() -> String { refresh(); return monitor.withLock { cachedLog } }

    private func refresh() {
        let now = time(nil)
        monitor.withLock {
            guard now != second else { return }
            second = now
            var moment = now
            var parts = tm()
            gmtime_r(&moment, &parts)
            cachedHeader = Self.format("%a, %d %b %Y %H:%M:%S GMT", &parts)
            var local = tm()
            localtime_r(&moment, &local)
            cachedLog = Self.format("[%d/%b/%Y:%H:%M:%S %z]", &local)
        }
    }

    private static func format(_ pattern: String, _ parts: inout tm) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, pattern, &parts)
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
