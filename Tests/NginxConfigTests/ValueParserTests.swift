import Testing
@testable import NginxConfig

@Suite struct ValueParserTests {
    @Test func sizes() {
        #expect(ConfigValues.parseSize("1024") == 1024)
        #expect(ConfigValues.parseSize("8k") == 8192)
        #expect(ConfigValues.parseSize("8K") == 8192)
        #expect(ConfigValues.parseSize("1m") == 1 << 20)
        #expect(ConfigValues.parseSize("2g") == 2 << 30)
        #expect(ConfigValues.parseSize("2g", allowGiga: false) == nil)
        for bad in ["", "k", "1.5m", "-1", "10x", "1kb", " 1"] {
            #expect(ConfigValues.parseSize(bad) == nil, "\(bad)")
        }
    }

    @Test func timesInSeconds() {
        #expect(ConfigValues.parseTime("30", unit: .seconds) == 30)
        #expect(ConfigValues.parseTime("30s", unit: .seconds) == 30)
        #expect(ConfigValues.parseTime("2m", unit: .seconds) == 120)
        #expect(ConfigValues.parseTime("1h30m", unit: .seconds) == 5400)
        #expect(ConfigValues.parseTime("1d", unit: .seconds) == 86400)
        #expect(ConfigValues.parseTime("1w", unit: .seconds) == 7 * 86400)
        #expect(ConfigValues.parseTime("1M", unit: .seconds) == 30 * 86400)
        #expect(ConfigValues.parseTime("1y", unit: .seconds) == 365 * 86400)
        #expect(ConfigValues.parseTime("1y 2d", unit: .seconds) == 367 * 86400)
        // ms is not a unit where nginx wants seconds; units must descend, each once.
        #expect(ConfigValues.parseTime("1h 30m", unit: .seconds) == 5400)
        for bad in ["500ms", "1m1h", "1s1s", "", "h", "1x", "1.5s", "1 s"] {
            #expect(ConfigValues.parseTime(bad, unit: .seconds) == nil, "\(bad)")
        }
    }

    @Test func timesInMilliseconds() {
        #expect(ConfigValues.parseTime("500ms", unit: .milliseconds) == 500)
        #expect(ConfigValues.parseTime("60", unit: .milliseconds) == 60_000)
        #expect(ConfigValues.parseTime("1m30s", unit: .milliseconds) == 90_000)
        #expect(ConfigValues.parseTime("1s500ms", unit: .milliseconds) == 1500)
        #expect(ConfigValues.parseTime("1y", unit: .milliseconds) == nil)
        #expect(ConfigValues.parseTime("30d", unit: .milliseconds) == 30 * 86_400_000)
        #expect(ConfigValues.parseTime("99999999999999999999", unit: .milliseconds) == nil)
    }

    @Test func flagsAndNumbers() {
        #expect(ConfigValues.parseFlag("on") == true)
        #expect(ConfigValues.parseFlag("OFF") == false)
        #expect(ConfigValues.parseFlag("yes") == nil)
        #expect(ConfigValues.parseNumber("42") == 42)
        #expect(ConfigValues.parseNumber("-1") == nil)
        #expect(ConfigValues.parseNumber("") == nil)
    }

    @Test func typedDirectiveReadsFailWithNginxWording() throws {
        let here = SourceLocation(file: "/f", line: 3)
        let sendfile = Directive(name: "sendfile", arguments: [ConfigArgument("maybe")], location: here)
        #expect(throws: ConfigError(#"invalid value "maybe" in "sendfile" directive, it must be "on" or "off""#, at: here)) { try sendfile.flag() }
        let size = Directive(name: "client_max_body_size", arguments: [ConfigArgument("1q")], location: here)
        #expect(throws: ConfigError(#""client_max_body_size" directive invalid value"#, at: here)) { try size.size() }
        let timeout = Directive(name: "proxy_read_timeout", arguments: [ConfigArgument("90s")], location: here)
        #expect(try timeout.milliseconds() == 90_000)
        #expect(try timeout.duration() == .seconds(90))
    }
}
