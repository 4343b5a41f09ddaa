#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import NginxConfig

/// `nginx-compat/directives.md` must list every directive of the table with the same contexts and
/// status. To regenerate its table after editing rows:
/// `GANTRY_WRITE_DIRECTIVES_MD=1 swift test --filter DirectiveMatrixTests`.
@Suite struct DirectiveMatrixTests {
    static let documentPath = repositoryRoot + "/nginx-compat/directives.md"

    @Test func documentMatchesTable() throws {
        let generated = DirectiveTable.standard.markdown()
        var document = try #require(readFile(Self.documentPath), "nginx-compat/directives.md is missing")
        let begin = try #require(document.firstRange(of: DirectiveTable.markdownBegin))
        let end = try #require(document.firstRange(of: DirectiveTable.markdownEnd))
        let current = String(document[begin.upperBound..<end.lowerBound])
        if getenv("GANTRY_WRITE_DIRECTIVES_MD") != nil, current != generated + "\n" {
            document.replaceSubrange(begin.upperBound..<end.lowerBound, with: generated + "\n")
            let fd = open(Self.documentPath, O_WRONLY | O_TRUNC)
            let bytes = Array(document.utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            return
        }
        // Every row of the table, with its contexts and status, is in the document, and nothing else is.
        let documentRows = Set(current.split(separator: "\n").filter { $0.hasPrefix("| `") }.map(String.init))
        let missing = DirectiveTable.standard.specs
            .map { "| \(DirectiveTable.markdownRow($0)) |" }
            .filter { !documentRows.contains($0) }
        #expect(missing.isEmpty, "nginx-compat/directives.md lacks or differs on these rows (regenerate it): \(missing.joined(separator: "\n"))")
        #expect(documentRows.count == DirectiveTable.standard.specs.count, "the document has rows the table does not")
    }

    @Test func everyNameHasNoOverlappingContexts() {
        for (name, rows) in Dictionary(grouping: DirectiveTable.standard.specs, by: \.name) where rows.count > 1 {
            for (i, a) in rows.enumerated() {
                for b in rows.dropFirst(i + 1) {
                    #expect(a.contexts.intersection(b.contexts).isEmpty, "\(name) has two rows for one context")
                }
            }
        }
    }

    @Test func arityFollowsNginx() {
        #expect(DirectiveArity.take12.accepts(argumentCount: 2))
        #expect(!DirectiveArity.take12.accepts(argumentCount: 0))
        #expect(DirectiveArity.flag.accepts(argumentCount: 1))
        #expect(!DirectiveArity.flag.accepts(argumentCount: 2))
        #expect(DirectiveArity.oneOrMore.accepts(argumentCount: 9))
        #expect(!DirectiveArity.twoOrMore.accepts(argumentCount: 1))
        #expect(DirectiveArity([.noArgs, .take12]).accepts(argumentCount: 0))
        #expect(DirectiveArity([.block, .take12]).nginxName == "BLOCK|TAKE12")
    }
}
