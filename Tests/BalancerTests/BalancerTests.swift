import Testing
@testable import Balancer

@Test func moduleLinks() {
    #expect(Bool(true))
}
