import CPython

/// Python objects shared by every request thread: the app, interned environ
/// keys and constant values, the helper classes. Created once with the GIL held;
/// used only with the GIL held.
final class WSGIPythonContext: @unchecked Sendable {
    typealias Obj = PyObjectPointer
    let runtime: PythonRuntime
    let api: PythonAPI
    let app: Obj
    let errorLog: ErrorLog

    // Interned keys.
    let kRequestMethod, kScriptName, kPathInfo, kQueryString, kRawURI, kServerProtocol, kServerName,
        kServerPort, kRemoteAddr, kRemotePort, kServerSoftware: Obj
    let kVersion, kURLScheme, kInput, kErrors, kMultithread, kMultiprocess, kRunOnce, kFileWrapper, kInputTerminated: Obj

    // Constant values.
    /// The exact `list` and `tuple` types: responses of these have no `close()`.
    let listType, tupleType: Obj
    let version, http, https, serverSoftware, emptyString, errors, multithread, multiprocess, inputStreamClass, fileWrapperClass: Obj
    private var methods: [String: Obj] = [:]
    private var protocols: [String: Obj] = [:]
    private var headerKeys: [String: Obj] = [:]
    private var serverValues: [String: Obj] = [:]

    init(runtime: PythonRuntime, app: Obj, errorLog: ErrorLog, multithread: Bool, multiprocess: Bool) throws {
        self.runtime = runtime
        self.api = runtime.api
        self.app = app
        self.errorLog = errorLog
        let api = runtime.api
        func intern(_ text: String) throws -> Obj {
            guard let object = api.PyUnicode_InternFromString(text) else { throw CPythonError.initializationFailed(runtime.takeErrorText()) }
            return object
        }
        kRequestMethod = try intern("REQUEST_METHOD")
        kScriptName = try intern("SCRIPT_NAME")
        kPathInfo = try intern("PATH_INFO")
        kQueryString = try intern("QUERY_STRING")
        kRawURI = try intern("RAW_URI")
        kServerProtocol = try intern("SERVER_PROTOCOL")
        kServerName = try intern("SERVER_NAME")
        kServerPort = try intern("SERVER_PORT")
        kRemoteAddr = try intern("REMOTE_ADDR")
        kRemotePort = try intern("REMOTE_PORT")
        kServerSoftware = try intern("SERVER_SOFTWARE")
        kVersion = try intern("wsgi.version")
        kURLScheme = try intern("wsgi.url_scheme")
        kInput = try intern("wsgi.input")
        kErrors = try intern("wsgi.errors")
        kMultithread = try intern("wsgi.multithread")
        kMultiprocess = try intern("wsgi.multiprocess")
        kRunOnce = try intern("wsgi.run_once")
        kFileWrapper = try intern("wsgi.file_wrapper")
        kInputTerminated = try intern("wsgi.input_terminated")
        guard let one = api.PyLong_FromSsize_t(1), let zero = api.PyLong_FromSsize_t(0),
              let version = api.tuple([one, zero]) else { throw CPythonError.initializationFailed(runtime.takeErrorText()) }
        self.version = version
        tupleType = api.type(of: version)
        guard let list = api.PyList_New(0) else { throw CPythonError.initializationFailed(runtime.takeErrorText()) }
        listType = api.type(of: list)
        api.Py_DecRef(list)
        http = try intern("http")
        https = try intern("https")
        serverSoftware = try intern("gantry")
        emptyString = try intern("")
        self.multithread = api.newBool(multithread)
        self.multiprocess = api.newBool(multiprocess)
        guard let inputClass = runtime.helper("InputStream"), let wrapperClass = runtime.helper("FileWrapper"),
              let errorClass = runtime.helper("ErrorStream") else {
            throw CPythonError.initializationFailed("bootstrap classes missing")
        }
        inputStreamClass = inputClass
        fileWrapperClass = wrapperClass
        api.Py_IncRef(inputClass)
        api.Py_IncRef(wrapperClass)
        // wsgi.errors writes into the error log.
        let write = PythonFunction.make(api: api, name: "write", owner: errorLog, implementation: errorsWriteImplementation)
        guard let errorsArguments = api.tuple([write]), let errors = api.PyObject_CallObject(errorClass, errorsArguments) else {
            throw CPythonError.initializationFailed(runtime.takeErrorText())
        }
        api.Py_DecRef(errorsArguments)
        self.errors = errors
        for method in ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] { methods[method] = try intern(method) }
        for version in ["HTTP/1.0", "HTTP/1.1"] { protocols[version] = try intern(version) }
    }

    /// A new reference to the `str` of `text`, whose characters are the
    /// request's bytes latin-1 decoded (`RequestParser`): PEP 3333's native string.
    @inline(__always) func native(_ text: String) -> Obj? { api.unicode(text) }

    /// Borrowed constants for values that repeat on every request.
    func method(_ name: String) -> (Obj?, owned: Bool) {
        if let cached = methods[name] { return (cached, false) }
        return (native(name), true)
    }
    func serverProtocol(_ name: String) -> (Obj?, owned: Bool) {
        if let cached = protocols[name] { return (cached, false) }
        return (native(name), true)
    }
    /// SERVER_NAME/SERVER_PORT values repeat per bind: cached (bounded).
    func serverValue(_ text: String) -> (Obj?, owned: Bool) {
        if let cached = serverValues[text] { return (cached, false) }
        guard serverValues.count < 64, let object = native(text) else { return (native(text), true) }
        serverValues[text] = object
        return (object, false)
    }
    /// Interned `HTTP_*` keys (bounded cache: arbitrary header names cannot grow it).
    func headerKey(_ key: String) -> (Obj?, owned: Bool) {
        if let cached = headerKeys[key] { return (cached, false) }
        guard headerKeys.count < 512, let object = api.PyUnicode_InternFromString(key) else { return (native(key), true) }
        headerKeys[key] = object
        return (object, false)
    }
}

/// `wsgi.errors.write(text)`: straight into the error log file.
private let errorsWriteImplementation: PythonFunction.Implementation = { capsule, arguments in
    guard let log: ErrorLog = PythonFunction.owner(capsule), let arguments, let api = PythonFunction.api else { return nil }
    guard api.PyTuple_Size(arguments) == 1, let text = api.PyTuple_GetItem(arguments, 0), api.isUnicode(text) else {
        api.setError(api.typeError, "write() takes one str argument")
        return nil
    }
    if let string = api.swiftString(text) { log.sink.write(string) }
    return api.newNone()
}

/// Builtin functions implemented in Swift (`METH_VARARGS`), bound to a Swift
/// owner object through a capsule.
enum PythonFunction {
    typealias Implementation = @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?

    /// Set once, before any Python thread runs, from the thread that starts Python.
    nonisolated(unsafe) static var api: PythonAPI?
    nonisolated(unsafe) static let capsuleName = strdup("gantry.owner")!

    /// A new reference to a builtin function; its method table and owner live for the process.
    static func make(api: PythonAPI, name: String, owner: AnyObject, implementation: Implementation) -> PyObjectPointer {
        let definition = UnsafeMutableRawPointer.allocate(byteCount: 32, alignment: 8)
        definition.initializeMemory(as: UInt8.self, repeating: 0, count: 32)
        definition.storeBytes(of: UnsafePointer(strdup(name)), toByteOffset: 0, as: UnsafePointer<CChar>?.self)
        definition.storeBytes(of: unsafeBitCast(implementation, to: UnsafeRawPointer.self), toByteOffset: 8, as: UnsafeRawPointer.self)
        definition.storeBytes(of: Int32(1), toByteOffset: 16, as: Int32.self)  // METH_VARARGS
        let capsule = api.PyCapsule_New(Unmanaged.passRetained(owner).toOpaque(), capsuleName, nil)
        let function = api.PyCFunction_NewEx(definition, capsule, nil)!
        api.Py_DecRef(capsule)
        return function
    }

    /// The owner a function was made with; `T` must be the type given to `make`.
    static func owner<T: AnyObject>(_ capsule: UnsafeMutableRawPointer?) -> T? {
        guard let capsule, let api, let pointer = api.PyCapsule_GetPointer(capsule, capsuleName) else { return nil }
        return Unmanaged<T>.fromOpaque(pointer).takeUnretainedValue()
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
