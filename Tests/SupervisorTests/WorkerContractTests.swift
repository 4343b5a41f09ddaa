import Testing
@testable import Supervisor

@Test func permanentFailuresAreNotRestarted() {
    #expect(WorkerExitCode.importError.isPermanent)
    #expect(!WorkerExitCode.requestTimeout.isPermanent)
    #expect(Set(WorkerExitCode.allCases.map(\.rawValue)).count == WorkerExitCode.allCases.count)
}
