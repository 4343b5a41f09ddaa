/// Why the embedded interpreter or the app could not be brought up. Each case
/// maps to a distinct worker exit code so a supervisor can stop instead of
/// restarting an app that can never start.
public enum CPythonError: Error, CustomStringConvertible, Sendable, Equatable {
    case interpreterNotFound(String)
    case interpreterQueryFailed(interpreter: String, output: String)
    case unsupportedVersion(String)
    case noSharedLibrary(interpreter: String, tried: [String])
    case libraryNotLoadable(path: String, reason: String)
    case missingSymbol(name: String, library: String)
    case initializationFailed(String)
    case invalidAppSpec(String)
    /// Importing the module (or calling the factory) raised; `traceback` is Python's.
    case importFailed(module: String, traceback: String)
    case callableNotFound(String)
    case notCallable(String)

    public var description: String {
        switch self {
        case .interpreterNotFound(let name):
            "python interpreter \"\(name)\" not found (give --python PATH)"
        case .interpreterQueryFailed(let interpreter, let output):
            "could not ask \(interpreter) for its configuration: \(output)"
        case .unsupportedVersion(let version):
            "python \(version) is not supported (CPython 3.8 or newer is needed)"
        case .noSharedLibrary(let interpreter, let tried):
            "\(interpreter) has no shared libpython (tried \(tried.joined(separator: ", "))); "
                + "use a CPython built with --enable-shared (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared)"
        case .libraryNotLoadable(let path, let reason):
            "cannot load \(path): \(reason)"
        case .missingSymbol(let name, let library):
            "\(library) lacks \(name): not a CPython 3.8+ library"
        case .initializationFailed(let reason):
            "python initialization failed: \(reason)"
        case .invalidAppSpec(let message):
            message
        case .importFailed(let module, let traceback):
            "failed to import \(module):\n\(traceback)"
        case .callableNotFound(let message), .notCallable(let message):
            message
        }
    }
}
