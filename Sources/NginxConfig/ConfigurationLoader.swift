#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Loads a configuration as `nginx -t` does: parse (with `-g` directives first, named
/// `command line`), check every directive against the directive table, then build the typed model.
public struct ConfigurationLoader: Sendable {
    /// The main file as given (`-c`); relative paths are taken against `prefix`, or the current directory.
    public var configFile: String
    /// nginx's `-p`. Without it, the prefix is the main file's directory.
    public var prefix: String?
    /// nginx's `-g`: main-context directives given on the command line.
    public var globalDirectives: String?
    public var table: DirectiveTable = .standard

    public init(configFile: String, prefix: String? = nil, globalDirectives: String? = nil) {
        self.configFile = configFile
        self.prefix = prefix
        self.globalDirectives = globalDirectives
    }

    /// The main file as an absolute path: relative to `-p` when given (as nginx), else to the current directory.
    public var resolvedConfigFile: String {
        if configFile.hasPrefix("/") { return configFile }
        if let prefix, !prefix.isEmpty { return Self.withSlash(Self.absolute(prefix)) + configFile }
        return Self.withSlash(Self.currentDirectory()) + configFile
    }

    /// The prefix relative directive paths are taken against, ending in `/`.
    public var resolvedPrefix: String {
        if let prefix, !prefix.isEmpty { return Self.withSlash(Self.absolute(prefix)) }
        return Self.withSlash(ConfigParser.directory(of: resolvedConfigFile))
    }

    public func load() throws(ConfigError) -> Configuration {
        let file = resolvedConfigFile
        let parser = ConfigParser(configurationPrefix: ConfigParser.directory(of: file),
                                  builtinFiles: [BuiltinMimeTypes.fileName: BuiltinMimeTypes.text])
        var tree: [Directive] = []
        if let globalDirectives, !globalDirectives.isEmpty {
            tree = try parser.parse(text: globalDirectives, file: SourceLocation.commandLine.file)
        }
        var files: [ConfigFile] = []
        let parsed = parser.parsePartially(file: file, recording: &files)
        tree += parsed.directives

        // nginx checks each directive as it reads it: an error before a syntax error wins.
        var validator = ConfigValidator(table: table)
        try validator.validate(tree)
        if let syntaxError = parsed.error { throw syntaxError }
        var builder = ModelBuilder()
        var configuration = try builder.build(tree)
        configuration.prefix = resolvedPrefix
        configuration.configFile = file
        configuration.files = files
        configuration.warnings = validator.warnings + builder.warnings
        return configuration
    }

    static func withSlash(_ path: String) -> String { path.hasSuffix("/") ? path : path + "/" }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : withSlash(currentDirectory()) + path
    }

    static func currentDirectory() -> String {
        guard let pointer = getcwd(nil, 0) else { return "/" }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
