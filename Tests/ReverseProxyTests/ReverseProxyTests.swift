import Testing
@testable import ReverseProxy

@Test func moduleLinks() {
    #expect(Bool(true))
}
