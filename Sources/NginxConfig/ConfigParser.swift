#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One file read while parsing, with its text as read (for `gantry -T`).
public struct ConfigFile: Sendable, Hashable {
    public var path: String
    public var text: String

    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }
}

/// Reads a config file into a directive tree, expanding `include` in place.
///
/// Relative `include` paths are looked up next to the including file first,
/// then in the configuration prefix (the main file's directory), which is
/// where nginx looks; so both Gantry-style layouts and Debian's
/// `/etc/nginx` tree work. See nginx-compat/directives.md.
public struct ConfigParser: Sendable {
    /// nginx's `conf_prefix`: the directory of the main configuration file.
    public var configurationPrefix: String
    /// Files the bundled defaults answer for when no such file exists on disk (e.g. `mime.types`).
    public var builtinFiles: [String: String]
    public var maximumIncludeDepth = 32

    public init(configurationPrefix: String, builtinFiles: [String: String] = [:]) {
        self.configurationPrefix = configurationPrefix
        self.builtinFiles = builtinFiles
    }

    /// Parses the main configuration file.
    public func parse(file path: String) throws(ConfigError) -> [Directive] {
        var files: [ConfigFile] = []
        return try parse(file: path, recording: &files)
    }

    /// Parses the main configuration file, recording every file read (in order, each once) for `-T`.
    public func parse(file path: String, recording files: inout [ConfigFile]) throws(ConfigError) -> [Directive] {
        let result = parsePartially(file: path, recording: &files)
        if let error = result.error { throw error }
        return result.directives
    }

    /// Parses directives given as text, e.g. `-g "daemon off;"` (named `command line`, as nginx does).
    public func parse(text: String, file: String) throws(ConfigError) -> [Directive] {
        var files: [ConfigFile] = []
        var failure: ConfigError?
        let directives = parse(text: text, file: file, depth: 0, files: &files, failure: &failure)
        if let failure { throw failure }
        return directives
    }

    /// What was read before a syntax error, and the error. nginx checks each directive as it reads
    /// it, so an error in a directive that comes before a syntax error is the one it reports;
    /// the loader validates `directives` first to report the same one.
    public struct PartialParse: Sendable {
        public var directives: [Directive]
        public var error: ConfigError?
    }

    /// Parses the main file, stopping at the first syntax error (or missing include) without throwing.
    public func parsePartially(file path: String, recording files: inout [ConfigFile]) -> PartialParse {
        let text: String
        do {
            text = try Self.read(path, from: nil)
        } catch {
            return PartialParse(directives: [], error: error)
        }
        var failure: ConfigError?
        let directives = parse(text: text, file: path, depth: 0, files: &files, failure: &failure)
        return PartialParse(directives: directives, error: failure)
    }

    private func parse(text: String, file: String, depth: Int, files: inout [ConfigFile], failure: inout ConfigError?) -> [Directive] {
        let isCommandLine = file == SourceLocation.commandLine.file
        if !isCommandLine && !files.contains(where: { $0.path == file }) {
            files.append(ConfigFile(path: file, text: text))
        }
        var lexer = Lexer(bytes: Array(text.utf8), file: file, firstLine: isCommandLine ? 0 : 1)
        return parseBlock(&lexer, file: file, insideBlock: false, depth: depth, files: &files, failure: &failure).directives
    }

    /// Reads one level; on an error, sets `failure` and returns what came before it.
    private func parseBlock(_ lexer: inout Lexer, file: String, insideBlock: Bool, depth: Int,
                            files: inout [ConfigFile], failure: inout ConfigError?) -> (directives: [Directive], endLine: Int) {
        var directives: [Directive] = []
        while true {
            let event: Lexer.Event
            do {
                event = try lexer.next()
            } catch {
                failure = error
                return (directives, lexer.line)
            }
            switch event {
            case .endOfFile(let line):
                if insideBlock {
                    failure = ConfigError("unexpected end of file, expecting \"}\"", at: location(file, line))
                }
                return (directives, line)
            case .blockEnd(let line):
                if !insideBlock {
                    failure = ConfigError("unexpected \"}\"", at: location(file, line))
                }
                return (directives, line)
            case .directive(let words, let opensBlock, let line):
                let here = location(file, line)
                let name = words[0].value
                let arguments = Array(words.dropFirst())
                if name == "include" && !opensBlock {
                    directives += expandInclude(arguments, at: here, depth: depth, files: &files, failure: &failure)
                    if failure != nil { return (directives, line) }
                    continue
                }
                var directive = Directive(name: name, arguments: arguments, location: here)
                if opensBlock && file == SourceLocation.commandLine.file {
                    failure = ConfigError("block directives are not supported in -g option", at: here)
                    return (directives, line)
                }
                if opensBlock {
                    let inner = parseBlock(&lexer, file: file, insideBlock: true, depth: depth, files: &files, failure: &failure)
                    directive.block = inner.directives
                    // An unfinished block has no end: checks made at its `}` must not run.
                    directive.blockEndLine = failure == nil ? inner.endLine : nil
                }
                directives.append(directive)
                if failure != nil { return (directives, line) }
            }
        }
    }

    private func location(_ file: String, _ line: Int) -> SourceLocation {
        SourceLocation(file: file, line: line)
    }

    private func expandInclude(_ arguments: [ConfigArgument], at here: SourceLocation, depth: Int,
                               files: inout [ConfigFile], failure: inout ConfigError?) -> [Directive] {
        guard arguments.count == 1 else {
            failure = ConfigError("invalid number of arguments in \"include\" directive", at: here)
            return []
        }
        guard depth < maximumIncludeDepth else {
            failure = ConfigError("include nesting is deeper than \(maximumIncludeDepth) levels (an include loop?)", at: here)
            return []
        }
        let pattern = arguments[0].value
        var result: [Directive] = []
        for path in resolveInclude(pattern, includedFrom: here) {
            let text: String
            if let builtin = builtinFiles[pattern], !Self.exists(path) {
                text = builtin
            } else {
                do {
                    text = try Self.read(path, from: here)
                } catch {
                    failure = error
                    return result
                }
            }
            result += parse(text: text, file: path, depth: depth + 1, files: &files, failure: &failure)
            if failure != nil { return result }
        }
        return result
    }

    /// The files an `include` names: a glob may match nothing (as in nginx); a plain path must exist.
    func resolveInclude(_ pattern: String, includedFrom here: SourceLocation) -> [String] {
        let candidates: [String]
        if pattern.hasPrefix("/") {
            candidates = [pattern]
        } else {
            let beside = Self.directory(of: here.file)
            let prefix = configurationPrefix
            candidates = beside == prefix || here.line == 0
                ? [Self.join(prefix, pattern)]
                : [Self.join(beside, pattern), Self.join(prefix, pattern)]
        }
        let isGlob = pattern.contains(where: { "*?[".contains($0) })
        if isGlob {
            for candidate in candidates {
                let matches = Self.glob(candidate)
                if !matches.isEmpty { return matches }
            }
            return []
        }
        for candidate in candidates where Self.exists(candidate) {
            return [candidate]
        }
        if builtinFiles[pattern] != nil { return [candidates.last!] }
        // Report the path nginx would have opened.
        return [candidates.last!]
    }

    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    static func glob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        var paths: [String] = []
        for i in 0..<Int(result.gl_pathc) {
            if let p = result.gl_pathv[i] { paths.append(String(cString: p)) }
        }
        return paths.sorted()
    }

    /// Reads a whole file; errors read as nginx's: `open() "PATH" failed (2: No such file or directory)`.
    static func read(_ path: String, from here: SourceLocation?) throws(ConfigError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw ConfigError("open() \"\(path)\" failed (\(code): \(String(cString: strerror(code))))", at: here)
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                throw ConfigError("read() \"\(path)\" failed (\(code): \(String(cString: strerror(code))))", at: here)
            }
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
