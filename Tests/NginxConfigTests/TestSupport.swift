#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import NginxConfig

/// A private directory of config files for one test, removed when the test ends.
final class TempConfigDirectory {
    let path: String

    init() {
        var template = Array("/tmp/gantry-config-test.XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(created != nil, "mkdtemp failed")
        path = String(cString: created!)
    }

    deinit {
        _ = system("rm -rf '\(path)'")
    }

    /// Writes `text` to `name` (directories created as needed) and returns the full path.
    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let full = path + "/" + name
        let directory = ConfigParser.directory(of: full)
        _ = system("mkdir -p '\(directory)'")
        let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0)
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        return full
    }

    /// Loads `name` as `gantry -t -c` would.
    func load(_ name: String = "gantry.conf", globals: String? = nil) throws(ConfigError) -> Configuration {
        try ConfigurationLoader(configFile: path + "/" + name, globalDirectives: globals).load()
    }
}

/// The repository root, found from this file's path.
let repositoryRoot: String = {
    var path = #filePath
    for _ in 0..<3 { path = ConfigParser.directory(of: path) }
    return path
}()

func readFile(_ path: String) -> String? {
    try? ConfigParser.read(path, from: nil)
}
