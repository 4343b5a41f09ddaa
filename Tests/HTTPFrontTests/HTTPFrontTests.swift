import Testing
@testable import HTTPFront

@Test func moduleLinks() {
    #expect(Bool(true))
}
