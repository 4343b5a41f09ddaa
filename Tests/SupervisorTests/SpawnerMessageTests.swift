#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Supervisor

private let account = WorkerCredentials(uid: 999, gid: 995, groups: [995, 20])

@Test func spawnRequestsSurviveEncoding() {
    let request = SpawnerRequest.spawn(.init(credentials: account, standardError: true,
                                             unlinkFirst: nil, executable: "/proc/self/exe",
                                             arguments: ["worker", "app:application", "--env", "A=b c", ""]))
    #expect(SpawnerRequest(decoding: request.encoded) == request)
    let signal = SpawnerRequest.signal(pid: 4242, signal: SIGQUIT)
    #expect(SpawnerRequest(decoding: signal.encoded) == signal)
    #expect(SpawnerRequest(decoding: Array("launch\0x".utf8)) == nil)
    #expect(SpawnerRequest(decoding: Array("spawn\0not-an-account\0\0\0/proc/self/exe".utf8)) == nil)
}

@Test func credentialsAndRepliesSurviveEncoding() {
    #expect(WorkerCredentials(encoded: account.encoded) == account)
    #expect(WorkerCredentials(encoded: "1:2:") == WorkerCredentials(uid: 1, gid: 2, groups: []))
    #expect(WorkerCredentials(encoded: "1:x:") == nil)
    #expect(SpawnerReply(decoding: SpawnerReply.ok(17).encoded) == .ok(17))
    #expect(SpawnerReply(decoding: SpawnerReply.error("no").encoded) == .error("no"))
    if case .error = SpawnerReply(decoding: Array("garbage".utf8)) {} else { Issue.record("garbage read as a success") }
}

@Test func theSpawnerStartsOnlyGantryWorkersAsConfiguredAccounts() {
    let policy = SpawnerPolicy(allowed: [account])
    func spawn(_ credentials: WorkerCredentials, executable: String = "/proc/self/exe", arguments: [String] = ["worker", "a:b"]) -> SpawnerRequest {
        .spawn(.init(credentials: credentials, standardError: false, unlinkFirst: nil, executable: executable, arguments: arguments))
    }
    #expect(policy.refusal(of: spawn(account), spawned: []) == nil)
    #expect(policy.refusal(of: spawn(WorkerCredentials(uid: 0, gid: 0, groups: [])), spawned: []) != nil)
    #expect(policy.refusal(of: spawn(WorkerCredentials(uid: 1000, gid: 1000, groups: [])), spawned: []) != nil)
    #expect(policy.refusal(of: spawn(account, executable: "/bin/sh"), spawned: []) != nil)
    #expect(policy.refusal(of: spawn(account, arguments: ["spawner"]), spawned: []) != nil)

    // Signals only reach workers it started.
    #expect(policy.refusal(of: .signal(pid: 1, signal: SIGKILL), spawned: [4242]) != nil)
    #expect(policy.refusal(of: .signal(pid: 4242, signal: SIGKILL), spawned: [4242]) == nil)
}

@Test func descriptorsTravelWithAMessage() throws {
    var pair: [Int32] = [-1, -1]
    #expect(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0)
    defer { close(pair[0]); close(pair[1]) }
    var pipeEnds: [Int32] = [-1, -1]
    #expect(pipe(&pipeEnds) == 0)
    try DescriptorPassing.send(pair[0], Array("hello".utf8), descriptors: [pipeEnds[1]])
    close(pipeEnds[1])
    let received = try #require(try DescriptorPassing.receive(pair[1]))
    #expect(received.bytes == Array("hello".utf8))
    #expect(received.descriptors.count == 1)
    // The passed descriptor is the pipe's write end: what goes in comes out of the read end.
    var byte: UInt8 = 42
    #expect(write(received.descriptors[0], &byte, 1) == 1)
    close(received.descriptors[0])
    var readBack: UInt8 = 0
    #expect(read(pipeEnds[0], &readBack, 1) == 1 && readBack == 42)
    close(pipeEnds[0])
}
