#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import Supervisor

private func contents(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

private func eventually(_ condition: () -> Bool) -> Bool {
    for _ in 0..<200 {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

@Test func relayedLinesFollowTheFileAcrossReopen() throws {
    let path = "/tmp/gantry-log-relay-\(getpid()).log"
    defer { unlink(path); unlink(path + ".1") }
    let relay = try LogRelay(path: path)
    let first = Array("worker line one\n".utf8)
    #expect(write(relay.writeFD, first, first.count) == first.count)
    #expect(eventually { contents(path) == "worker line one\n" })
    // logrotate: rename, then USR1.
    #expect(rename(path, path + ".1") == 0)
    relay.reopen()
    let second = Array("worker line two\n".utf8)
    #expect(write(relay.writeFD, second, second.count) == second.count)
    #expect(eventually { contents(path) == "worker line two\n" })
    #expect(contents(path + ".1") == "worker line one\n")
}
