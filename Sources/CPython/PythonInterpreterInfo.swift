import Foundation

/// What the chosen interpreter says about itself: where its shared libpython is
/// and which prefix/virtualenv it runs in. Asked once, by running it.
public struct PythonInterpreterInfo: Codable, Sendable, Equatable {
    public var executable: String
    public var version: [Int]
    public var prefix: String
    public var basePrefix: String
    public var execPrefix: String
    public var baseExecPrefix: String
    public var libdir: String?
    public var ldlibrary: String?
    public var instsoname: String?
    public var multiarch: String?
    public var frameworkPrefix: String?
    public var sitePackages: [String]
    public var path: [String]

    enum CodingKeys: String, CodingKey {
        case executable, version, prefix, path, libdir, ldlibrary, instsoname, multiarch
        case basePrefix = "base_prefix", execPrefix = "exec_prefix", baseExecPrefix = "base_exec_prefix"
        case frameworkPrefix = "framework_prefix", sitePackages = "site_packages"
    }

    public var versionString: String { version.map(String.init).joined(separator: ".") }
    public var isVirtualEnvironment: Bool { prefix != basePrefix }

    static let query = """
        import json, sys, sysconfig, site
        v = sysconfig.get_config_var
        try:
            sp = site.getsitepackages()
        except Exception:
            sp = []
        print(json.dumps({"executable": sys.executable, "version": list(sys.version_info[:3]),
            "prefix": sys.prefix, "base_prefix": getattr(sys, "base_prefix", sys.prefix),
            "exec_prefix": sys.exec_prefix, "base_exec_prefix": getattr(sys, "base_exec_prefix", sys.exec_prefix),
            "libdir": v("LIBDIR"), "ldlibrary": v("LDLIBRARY"), "instsoname": v("INSTSONAME"),
            "multiarch": v("MULTIARCH"), "framework_prefix": v("PYTHONFRAMEWORKPREFIX") or None,
            "site_packages": sp, "path": sys.path[1:]}))
        """

    /// Runs `interpreter` (a path, or a name looked up on `PATH`) once.
    public static func ask(_ interpreter: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PythonInterpreterInfo {
        guard let executable = resolve(interpreter, environment: environment) else {
            throw CPythonError.interpreterNotFound(interpreter)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-c", query]
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do { try process.run() } catch {
            throw CPythonError.interpreterQueryFailed(interpreter: executable, output: "\(error)")
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0,
              let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let info = try? JSONDecoder().decode(PythonInterpreterInfo.self, from: Data(line.utf8)) else {
            throw CPythonError.interpreterQueryFailed(interpreter: executable, output: text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard info.version.count >= 2, (info.version[0], info.version[1]) >= (3, 8) else {
            throw CPythonError.unsupportedVersion(info.versionString)
        }
        return info
    }

    static func resolve(_ interpreter: String, environment: [String: String]) -> String? {
        if interpreter.contains("/") {
            return FileManager.default.isExecutableFile(atPath: interpreter) ? interpreter : nil
        }
        for directory in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(interpreter)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Where the shared libpython may be, most specific first (pure: tested).
    public var libraryCandidates: [String] {
        var names: [String] = []
        for name in [instsoname, ldlibrary].compactMap({ $0 }) where !name.isEmpty && !names.contains(name) {
            // A static LDLIBRARY (`libpython3.11.a`) is no use to dlopen.
            if name.hasSuffix(".a") { continue }
            names.append(name)
        }
        if names.isEmpty, version.count >= 2 {
            names.append("libpython\(version[0]).\(version[1]).so.1.0")
            names.append("libpython\(version[0]).\(version[1]).so")
        }
        var directories: [String] = []
        for directory in [libdir, libdir.flatMap { dir in multiarch.map { "\(dir)/\($0)" } },
                          "\(basePrefix)/lib", frameworkPrefix].compactMap({ $0 }) where !directories.contains(directory) {
            directories.append(directory)
        }
        var candidates: [String] = []
        for name in names {
            for directory in directories { candidates.append("\(directory)/\(name)") }
        }
        // Finally let the dynamic loader search (ld.so.conf, e.g. Debian's multiarch dir).
        candidates.append(contentsOf: names)
        return candidates
    }
}
