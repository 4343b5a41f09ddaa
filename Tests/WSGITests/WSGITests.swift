import Testing
@testable import WSGI

@Test func moduleLinks() {
    #expect(Bool(true))
}
