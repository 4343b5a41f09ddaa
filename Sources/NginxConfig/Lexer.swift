/// nginx's tokenizer (`ngx_conf_read_token`): it yields whole directives, so
/// that `;`, `{` and `}` errors come out exactly where nginx reports them.
struct Lexer {
    enum Event: Equatable {
        /// The words of a directive (name first) and whether a `{` opened a block.
        case directive([ConfigArgument], opensBlock: Bool, line: Int)
        case blockEnd(line: Int)
        case endOfFile(line: Int)
    }

    private let bytes: [UInt8]
    private let file: String
    private var position = 0
    private(set) var line = 1

    init(bytes: [UInt8], file: String, firstLine: Int = 1) {
        self.bytes = bytes
        self.file = file
        self.line = firstLine
    }

    private func error(_ message: String) -> ConfigError {
        ConfigError(message, at: SourceLocation(file: file, line: line))
    }

    private static func isSpace(_ c: UInt8) -> Bool {
        c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r") || c == UInt8(ascii: "\n")
    }

    mutating func next() throws(ConfigError) -> Event {
        var words: [ConfigArgument] = []
        var needSpace = false
        var lastSpace = true
        var sharpComment = false
        var variable = false
        var quoted = false
        var singleQuoted = false
        var doubleQuoted = false
        var start = position

        while true {
            guard position < bytes.count else {
                if !words.isEmpty || !lastSpace {
                    if file == SourceLocation.commandLine.file {
                        throw error("unexpected end of parameter, expecting \";\"")
                    }
                    throw error("unexpected end of file, expecting \";\" or \"}\"")
                }
                return .endOfFile(line: line)
            }
            let ch = bytes[position]
            position += 1

            if ch == UInt8(ascii: "\n") {
                line += 1
                if sharpComment { sharpComment = false }
            }
            if sharpComment { continue }
            if quoted {
                quoted = false
                continue
            }
            if needSpace {
                if Self.isSpace(ch) {
                    lastSpace = true
                    needSpace = false
                    continue
                }
                if ch == UInt8(ascii: ";") { return .directive(words, opensBlock: false, line: line) }
                if ch == UInt8(ascii: "{") { return .directive(words, opensBlock: true, line: line) }
                if ch == UInt8(ascii: ")") {
                    lastSpace = true
                    needSpace = false
                } else {
                    throw error("unexpected \"\(Character(Unicode.Scalar(ch)))\"")
                }
            }

            if lastSpace {
                start = position - 1
                if Self.isSpace(ch) { continue }
                switch ch {
                case UInt8(ascii: ";"), UInt8(ascii: "{"):
                    if words.isEmpty { throw error("unexpected \"\(Character(Unicode.Scalar(ch)))\"") }
                    return .directive(words, opensBlock: ch == UInt8(ascii: "{"), line: line)
                case UInt8(ascii: "}"):
                    if !words.isEmpty { throw error("unexpected \"}\"") }
                    return .blockEnd(line: line)
                case UInt8(ascii: "#"):
                    sharpComment = true
                    continue
                case UInt8(ascii: "\\"):
                    quoted = true
                    lastSpace = false
                    continue
                case UInt8(ascii: "\""):
                    start += 1
                    doubleQuoted = true
                    lastSpace = false
                    continue
                case UInt8(ascii: "'"):
                    start += 1
                    singleQuoted = true
                    lastSpace = false
                    continue
                case UInt8(ascii: "$"):
                    variable = true
                    lastSpace = false
                    continue
                default:
                    lastSpace = false
                    continue
                }
            }

            if ch == UInt8(ascii: "{") && variable { continue }
            variable = false
            if ch == UInt8(ascii: "\\") {
                quoted = true
                continue
            }
            if ch == UInt8(ascii: "$") {
                variable = true
                continue
            }

            var found = false
            var wasQuoted = false
            if doubleQuoted {
                if ch == UInt8(ascii: "\"") {
                    doubleQuoted = false
                    needSpace = true
                    found = true
                    wasQuoted = true
                }
            } else if singleQuoted {
                if ch == UInt8(ascii: "'") {
                    singleQuoted = false
                    needSpace = true
                    found = true
                    wasQuoted = true
                }
            } else if Self.isSpace(ch) || ch == UInt8(ascii: ";") || ch == UInt8(ascii: "{") {
                lastSpace = true
                found = true
            }

            if found {
                words.append(ConfigArgument(Self.unescape(bytes[start..<(position - 1)]), quoted: wasQuoted))
                if ch == UInt8(ascii: ";") { return .directive(words, opensBlock: false, line: line) }
                if ch == UInt8(ascii: "{") { return .directive(words, opensBlock: true, line: line) }
            }
        }
    }

    /// nginx's escapes: `\"`, `\'`, `\\`, `\t`, `\r`, `\n`; any other backslash stays as written.
    private static func unescape(_ raw: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = raw.startIndex
        while i < raw.endIndex {
            let c = raw[i]
            if c == UInt8(ascii: "\\"), i + 1 < raw.endIndex {
                let n = raw[i + 1]
                switch n {
                case UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "\\"):
                    out.append(n); i += 2; continue
                case UInt8(ascii: "t"): out.append(9); i += 2; continue
                case UInt8(ascii: "r"): out.append(13); i += 2; continue
                case UInt8(ascii: "n"): out.append(10); i += 2; continue
                default: break
                }
            }
            out.append(c)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
