import Testing
@testable import NginxConfig

@Suite struct CPUAffinityTests {
    private func parse(_ values: [String]) throws(ConfigError) -> CPUAffinity {
        try CPUAffinity.parse(values, at: nil)
    }

    @Test func masksReadRightToLeft() throws {
        #expect(try parse(["0001", "0010", "1100"]) == .masks([[0], [1], [2, 3]]))
        // nginx skips spaces inside a mask (a quoted argument).
        #expect(try parse(["01 00"]) == .masks([[2]]))
    }

    @Test func autoAndOff() throws {
        #expect(try parse(["auto"]) == .auto(mask: nil))
        #expect(try parse(["auto", "1010"]) == .auto(mask: [1, 3]))
        #expect(try parse(["off"]) == .off)
    }

    @Test func errorsAreNginxs() {
        #expect(throws: ConfigError("invalid character \"x\" in \"worker_cpu_affinity\"", at: nil)) {
            try parse(["01x"])
        }
        #expect(throws: ConfigError("invalid number of arguments in \"worker_cpu_affinity\" directive", at: nil)) {
            try parse(["auto", "01", "10"])
        }
        #expect(throws: ConfigError("\"worker_cpu_affinity\" supports up to 1024 CPUs only", at: nil)) {
            try parse([String(repeating: "0", count: 1025)])
        }
    }

    @Test func defaultBindsOnlyOneLoopPerUsableCPU() {
        #expect(CPUAffinity.defaultBinding.binding(loopCount: 2, usable: [0, 1]) == [[0], [1]])
        #expect(CPUAffinity.defaultBinding.binding(loopCount: 2, usable: [2, 5]) == [[2], [5]])
        // Fewer or more loops than CPUs, or a single loop: the kernel places them.
        #expect(CPUAffinity.defaultBinding.binding(loopCount: 2, usable: [0, 1, 2, 3]) == [nil, nil])
        #expect(CPUAffinity.defaultBinding.binding(loopCount: 3, usable: [0, 1]) == [nil, nil, nil])
        #expect(CPUAffinity.defaultBinding.binding(loopCount: 1, usable: [0]) == [nil])
    }

    @Test func autoWrapsOverItsMask() {
        #expect(CPUAffinity.auto(mask: nil).binding(loopCount: 3, usable: [0, 1]) == [[0], [1], [0]])
        #expect(CPUAffinity.auto(mask: [1, 3]).binding(loopCount: 3, usable: [0, 1, 2, 3]) == [[1], [3], [1]])
    }

    @Test func loopsPastTheLastMaskUseIt() {
        #expect(CPUAffinity.masks([[0], [1, 2]]).binding(loopCount: 3, usable: []) == [[0], [1, 2], [1, 2]])
        #expect(CPUAffinity.masks([[]]).binding(loopCount: 1, usable: [0]) == [nil])
        #expect(CPUAffinity.off.binding(loopCount: 2, usable: [0, 1]) == [nil, nil])
    }
}
