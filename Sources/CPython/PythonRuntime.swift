#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one embedded interpreter of a worker process: loaded, initialized for the
/// chosen interpreter's prefix/virtualenv, with Gantry's bootstrap helpers.
///
/// Every method that touches Python objects needs the GIL; the doc says so.
public final class PythonRuntime: @unchecked Sendable {
    public typealias Obj = PyObjectPointer
    public let api: PythonAPI
    public let info: PythonInterpreterInfo
    /// The bootstrap namespace (a dict), alive for the process.
    public let helpers: Obj
    private var mainThreadState: UnsafeMutableRawPointer?

    /// Loads libpython for `info`, starts the interpreter on the calling thread
    /// (which then holds the GIL) and puts `extraPath` first on `sys.path`.
    public init(info: PythonInterpreterInfo, extraPath: [String]) throws {
        var tried: [String] = []
        var loaded: PythonAPI?
        var loadError: CPythonError?
        for candidate in info.libraryCandidates {
            tried.append(candidate)
            if candidate.hasPrefix("/"), access(candidate, F_OK) != 0 { continue }
            do {
                loaded = try PythonAPI(libraryPath: candidate)
                break
            } catch let error as CPythonError {
                if case .missingSymbol = error { loadError = error }
                if candidate.hasPrefix("/") { loadError = error }
            }
        }
        guard let api = loaded else {
            if let loadError, case .missingSymbol = loadError { throw loadError }
            throw CPythonError.noSharedLibrary(interpreter: info.executable, tried: tried)
        }
        self.api = api
        self.info = info
        guard api.Py_IsInitialized() == 0 else { throw CPythonError.initializationFailed("already initialized") }

        // Let CPython's own path logic find the prefix (and a venv's pyvenv.cfg)
        // from the interpreter's executable, as if it were running it.
        var restoreHome: String?? = nil
        if let setProgramName = api.Py_SetProgramName, let wide = api.Py_DecodeLocale(info.executable, nil) {
            setProgramName(wide)  // must stay alive: never freed
        } else {
            restoreHome = .some(getenv("PYTHONHOME").map { String(cString: $0) })
            if getenv("PYTHONHOME") == nil {
                let home = info.basePrefix == info.baseExecPrefix ? info.basePrefix : "\(info.basePrefix):\(info.baseExecPrefix)"
                setenv("PYTHONHOME", home, 1)
            }
        }
        api.Py_InitializeEx(0)  // 0: leave signal handling to Gantry
        if case .some(let previous) = restoreHome {
            if let previous { setenv("PYTHONHOME", previous, 1) } else { unsetenv("PYTHONHOME") }
        }
        guard api.Py_IsInitialized() != 0 else { throw CPythonError.initializationFailed("Py_InitializeEx did not initialize") }

        guard let namespace = api.PyDict_New(),
              let builtins = api.PyImport_ImportModule("builtins"),
              let exec = api.PyObject_GetAttrString(builtins, "exec"),
              let source = api.unicode(Bootstrap.source) else {
            throw CPythonError.initializationFailed("cannot set up the bootstrap namespace")
        }
        defer { api.Py_DecRef(exec); api.Py_DecRef(builtins) }
        api.Py_IncRef(namespace)
        guard let arguments = api.tuple([source, namespace]), let result = api.PyObject_CallObject(exec, arguments) else {
            throw CPythonError.initializationFailed("bootstrap failed: \(PythonRuntime.takeErrorText(api: api, namespace: nil))")
        }
        api.Py_DecRef(arguments)
        api.Py_DecRef(result)
        helpers = namespace

        func list(_ items: [String]) -> Obj {
            api.tuple(items.map { api.unicode($0) ?? api.newNone() }) ?? api.newNone()
        }
        let configureArguments: [Obj] = [
            api.unicode(info.prefix) ?? api.newNone(), api.unicode(info.execPrefix) ?? api.newNone(),
            api.unicode(info.executable) ?? api.newNone(), list(info.sitePackages), list(extraPath),
        ]
        guard call("configure", configureArguments) else {
            throw CPythonError.initializationFailed("configure failed: \(takeErrorText())")
        }
    }

    /// Calls a bootstrap helper with new references (stolen); returns the new result or nil (error set).
    public func callHelper(_ name: String, _ arguments: [Obj]) -> Obj? {
        guard let function = api.PyDict_GetItemString(helpers, name) else {
            for argument in arguments { api.Py_DecRef(argument) }
            api.setError(api.runtimeError, "gantry helper \(name) missing")
            return nil
        }
        guard let tuple = api.tuple(arguments) else { return nil }
        defer { api.Py_DecRef(tuple) }
        return api.PyObject_CallObject(function, tuple)
    }

    /// Like `callHelper`, dropping the result; false when it raised.
    @discardableResult
    public func call(_ name: String, _ arguments: [Obj]) -> Bool {
        guard let result = callHelper(name, arguments) else { return false }
        api.Py_DecRef(result)
        return true
    }

    /// A borrowed reference to a bootstrap object (e.g. the `InputStream` class).
    public func helper(_ name: String) -> Obj? { api.PyDict_GetItemString(helpers, name) }

    /// Fetches and clears the pending Python exception, formatted as Python's traceback.
    public func takeErrorText() -> String { PythonRuntime.takeErrorText(api: api, namespace: helpers) }

    /// True when the pending exception is an instance of the bootstrap class `name`.
    public func pendingErrorIs(_ name: String) -> Bool {
        guard let type = helper(name), api.PyErr_Occurred() != nil else { return false }
        return api.PyErr_ExceptionMatches(type) != 0
    }

    static func takeErrorText(api: PythonAPI, namespace: Obj?) -> String {
        var type: Obj? = nil, value: Obj? = nil, traceback: Obj? = nil
        api.PyErr_Fetch(&type, &value, &traceback)
        guard let exceptionType = type else { return "unknown error" }
        api.PyErr_NormalizeException(&type, &value, &traceback)
        defer { api.Py_DecRef(type); api.Py_DecRef(value); api.Py_DecRef(traceback) }
        if let namespace, let format = api.PyDict_GetItemString(namespace, "format_exception") {
            api.Py_IncRef(type); api.Py_IncRef(value ?? api.none); api.Py_IncRef(traceback ?? api.none)
            if let arguments = api.tuple([type ?? exceptionType, value ?? api.none, traceback ?? api.none]) {
                defer { api.Py_DecRef(arguments) }
                if let text = api.PyObject_CallObject(format, arguments) {
                    defer { api.Py_DecRef(text) }
                    if let string = api.swiftString(text) { return string.hasSuffix("\n") ? String(string.dropLast()) : string }
                }
                api.PyErr_Clear()
            }
        }
        return value.map { api.describe($0) } ?? api.describe(exceptionType)
    }

    /// The one-line form of the pending exception (`TypeError: ...`), clearing it.
    public func takeErrorLine() -> String {
        let text = takeErrorText()
        return text.split(separator: "\n").last.map(String.init) ?? text
    }

    /// Gives the GIL up for good on the thread that initialized Python; request
    /// threads take it with `PyGILState_Ensure`.
    public func releaseMainThread() {
        mainThreadState = api.PyEval_SaveThread()
    }

    /// Runs `body` holding the GIL from any thread.
    public func withGIL<R>(_ body: () throws -> R) rethrows -> R {
        let state = api.PyGILState_Ensure()
        defer { api.PyGILState_Release(state) }
        return try body()
    }
}
