#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A borrowed or owned `PyObject *`. Ownership is documented where it matters.
public typealias PyObjectPointer = UnsafeMutableRawPointer

/// The libpython entry points Gantry calls, resolved with `dlsym` from a library
/// opened at run time, so one `gantry` binary serves any CPython 3.8+ without
/// Python headers at build time. Only stable-ABI functions are used.
public final class PythonAPI: @unchecked Sendable {
    public typealias Obj = PyObjectPointer
    public let libraryPath: String

    // Life cycle and the GIL.
    public let Py_InitializeEx: @convention(c) (Int32) -> Void
    public let Py_IsInitialized: @convention(c) () -> Int32
    public let Py_SetProgramName: (@convention(c) (UnsafeMutableRawPointer?) -> Void)?
    public let Py_DecodeLocale: @convention(c) (UnsafePointer<CChar>?, UnsafeMutablePointer<Int>?) -> UnsafeMutableRawPointer?
    public let PyEval_SaveThread: @convention(c) () -> UnsafeMutableRawPointer?
    public let PyEval_RestoreThread: @convention(c) (UnsafeMutableRawPointer?) -> Void
    public let PyGILState_Ensure: @convention(c) () -> Int32
    public let PyGILState_Release: @convention(c) (Int32) -> Void

    // Objects.
    public let Py_IncRef: @convention(c) (Obj?) -> Void
    public let Py_DecRef: @convention(c) (Obj?) -> Void
    public let PyImport_ImportModule: @convention(c) (UnsafePointer<CChar>) -> Obj?
    public let PyObject_GetAttrString: @convention(c) (Obj, UnsafePointer<CChar>) -> Obj?
    public let PyObject_SetAttrString: @convention(c) (Obj, UnsafePointer<CChar>, Obj?) -> Int32
    public let PyObject_HasAttrString: @convention(c) (Obj, UnsafePointer<CChar>) -> Int32
    public let PyObject_Call: @convention(c) (Obj, Obj, Obj?) -> Obj?
    public let PyObject_CallObject: @convention(c) (Obj, Obj?) -> Obj?
    public let PyCallable_Check: @convention(c) (Obj) -> Int32
    public let PyObject_Str: @convention(c) (Obj) -> Obj?
    public let PyObject_GetIter: @convention(c) (Obj) -> Obj?
    public let PyIter_Next: @convention(c) (Obj) -> Obj?
    public let PyType_GetFlags: @convention(c) (Obj) -> UInt

    // Strings, bytes, numbers.
    public let PyUnicode_FromStringAndSize: @convention(c) (UnsafePointer<CChar>?, Int) -> Obj?
    public let PyUnicode_DecodeLatin1: @convention(c) (UnsafePointer<CChar>?, Int, UnsafePointer<CChar>?) -> Obj?
    /// Not in the limited API before 3.10, but exported by every CPython 3.x.
    public let PyUnicode_AsUTF8AndSize: (@convention(c) (Obj, UnsafeMutablePointer<Int>?) -> UnsafePointer<CChar>?)?
    public let PyUnicode_AsLatin1String: @convention(c) (Obj) -> Obj?
    public let PyUnicode_AsUTF8String: @convention(c) (Obj) -> Obj?
    public let PyUnicode_InternFromString: @convention(c) (UnsafePointer<CChar>) -> Obj?
    public let PyBytes_FromStringAndSize: @convention(c) (UnsafePointer<CChar>?, Int) -> Obj?
    public let PyBytes_Size: @convention(c) (Obj) -> Int
    public let PyBytes_AsStringAndSize: @convention(c) (Obj, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, UnsafeMutablePointer<Int>) -> Int32
    public let PyLong_FromSsize_t: @convention(c) (Int) -> Obj?
    public let PyLong_AsSsize_t: @convention(c) (Obj) -> Int
    public let PyBool_FromLong: @convention(c) (Int) -> Obj?

    // Containers.
    public let PyTuple_New: @convention(c) (Int) -> Obj?
    public let PyTuple_SetItem: @convention(c) (Obj, Int, Obj?) -> Int32
    public let PyTuple_GetItem: @convention(c) (Obj, Int) -> Obj?
    public let PyTuple_Size: @convention(c) (Obj) -> Int
    public let PyList_New: @convention(c) (Int) -> Obj?
    public let PyList_Size: @convention(c) (Obj) -> Int
    public let PyList_GetItem: @convention(c) (Obj, Int) -> Obj?
    public let PySequence_Size: @convention(c) (Obj) -> Int
    public let PySequence_GetItem: @convention(c) (Obj, Int) -> Obj?
    public let PyDict_New: @convention(c) () -> Obj?
    public let PyDict_SetItem: @convention(c) (Obj, Obj, Obj) -> Int32
    public let PyDict_SetItemString: @convention(c) (Obj, UnsafePointer<CChar>, Obj) -> Int32
    public let PyDict_GetItemString: @convention(c) (Obj, UnsafePointer<CChar>) -> Obj?

    // Errors.
    public let PyErr_Occurred: @convention(c) () -> Obj?
    public let PyErr_Fetch: @convention(c) (UnsafeMutablePointer<Obj?>, UnsafeMutablePointer<Obj?>, UnsafeMutablePointer<Obj?>) -> Void
    public let PyErr_Restore: @convention(c) (Obj?, Obj?, Obj?) -> Void
    public let PyErr_NormalizeException: @convention(c) (UnsafeMutablePointer<Obj?>, UnsafeMutablePointer<Obj?>, UnsafeMutablePointer<Obj?>) -> Void
    public let PyErr_Clear: @convention(c) () -> Void
    public let PyErr_SetString: @convention(c) (Obj, UnsafePointer<CChar>) -> Void
    public let PyErr_ExceptionMatches: @convention(c) (Obj) -> Int32

    // Extension functions and capsules.
    public let PyCFunction_NewEx: @convention(c) (UnsafeMutableRawPointer, Obj?, Obj?) -> Obj?
    public let PyCapsule_New: @convention(c) (UnsafeMutableRawPointer, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Obj?
    public let PyCapsule_GetPointer: @convention(c) (Obj, UnsafePointer<CChar>?) -> UnsafeMutableRawPointer?

    // Singletons and exception types (data symbols).
    public let none: Obj
    public let trueObject: Obj
    public let falseObject: Obj
    public let typeError: Obj
    public let valueError: Obj
    public let assertionError: Obj
    public let runtimeError: Obj
    public let osError: Obj

    /// Opens `path` with `RTLD_NOW | RTLD_GLOBAL` (C extension modules resolve their
    /// `Py*` symbols against it) and resolves every entry point.
    public init(libraryPath path: String) throws {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_GLOBAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
            throw CPythonError.libraryNotLoadable(path: path, reason: reason)
        }
        libraryPath = path
        func symbol<T>(_ name: String, as: T.Type = T.self) throws -> T {
            guard let pointer = dlsym(handle, name) else { throw CPythonError.missingSymbol(name: name, library: path) }
            return unsafeBitCast(pointer, to: T.self)
        }
        func optionalSymbol<T>(_ name: String, as: T.Type = T.self) -> T? {
            dlsym(handle, name).map { unsafeBitCast($0, to: T.self) }
        }
        func object(_ name: String) throws -> Obj {
            guard let pointer = dlsym(handle, name) else { throw CPythonError.missingSymbol(name: name, library: path) }
            return pointer
        }
        func exceptionType(_ name: String) throws -> Obj {
            // `PyExc_X` is a `PyObject *` variable: dereference it.
            let variable = try object(name).assumingMemoryBound(to: Obj.self)
            return variable.pointee
        }
        Py_InitializeEx = try symbol("Py_InitializeEx")
        Py_IsInitialized = try symbol("Py_IsInitialized")
        Py_SetProgramName = optionalSymbol("Py_SetProgramName")
        Py_DecodeLocale = try symbol("Py_DecodeLocale")
        PyEval_SaveThread = try symbol("PyEval_SaveThread")
        PyEval_RestoreThread = try symbol("PyEval_RestoreThread")
        PyGILState_Ensure = try symbol("PyGILState_Ensure")
        PyGILState_Release = try symbol("PyGILState_Release")
        Py_IncRef = try symbol("Py_IncRef")
        Py_DecRef = try symbol("Py_DecRef")
        PyImport_ImportModule = try symbol("PyImport_ImportModule")
        PyObject_GetAttrString = try symbol("PyObject_GetAttrString")
        PyObject_SetAttrString = try symbol("PyObject_SetAttrString")
        PyObject_HasAttrString = try symbol("PyObject_HasAttrString")
        PyObject_Call = try symbol("PyObject_Call")
        PyObject_CallObject = try symbol("PyObject_CallObject")
        PyCallable_Check = try symbol("PyCallable_Check")
        PyObject_Str = try symbol("PyObject_Str")
        PyObject_GetIter = try symbol("PyObject_GetIter")
        PyIter_Next = try symbol("PyIter_Next")
        PyType_GetFlags = try symbol("PyType_GetFlags")
        PyUnicode_FromStringAndSize = try symbol("PyUnicode_FromStringAndSize")
        PyUnicode_DecodeLatin1 = try symbol("PyUnicode_DecodeLatin1")
        PyUnicode_AsLatin1String = try symbol("PyUnicode_AsLatin1String")
        PyUnicode_AsUTF8AndSize = optionalSymbol("PyUnicode_AsUTF8AndSize")
        PyUnicode_AsUTF8String = try symbol("PyUnicode_AsUTF8String")
        PyUnicode_InternFromString = try symbol("PyUnicode_InternFromString")
        PyBytes_FromStringAndSize = try symbol("PyBytes_FromStringAndSize")
        PyBytes_AsStringAndSize = try symbol("PyBytes_AsStringAndSize")
        PyBytes_Size = try symbol("PyBytes_Size")
        PyLong_FromSsize_t = try symbol("PyLong_FromSsize_t")
        PyLong_AsSsize_t = try symbol("PyLong_AsSsize_t")
        PyBool_FromLong = try symbol("PyBool_FromLong")
        PyTuple_New = try symbol("PyTuple_New")
        PyTuple_SetItem = try symbol("PyTuple_SetItem")
        PyTuple_GetItem = try symbol("PyTuple_GetItem")
        PyTuple_Size = try symbol("PyTuple_Size")
        PyList_New = try symbol("PyList_New")
        PyList_Size = try symbol("PyList_Size")
        PyList_GetItem = try symbol("PyList_GetItem")
        PySequence_Size = try symbol("PySequence_Size")
        PySequence_GetItem = try symbol("PySequence_GetItem")
        PyDict_New = try symbol("PyDict_New")
        PyDict_SetItem = try symbol("PyDict_SetItem")
        PyDict_SetItemString = try symbol("PyDict_SetItemString")
        PyDict_GetItemString = try symbol("PyDict_GetItemString")
        PyErr_Occurred = try symbol("PyErr_Occurred")
        PyErr_Fetch = try symbol("PyErr_Fetch")
        PyErr_Restore = try symbol("PyErr_Restore")
        PyErr_NormalizeException = try symbol("PyErr_NormalizeException")
        PyErr_Clear = try symbol("PyErr_Clear")
        PyErr_SetString = try symbol("PyErr_SetString")
        PyErr_ExceptionMatches = try symbol("PyErr_ExceptionMatches")
        PyCFunction_NewEx = try symbol("PyCFunction_NewEx")
        PyCapsule_New = try symbol("PyCapsule_New")
        PyCapsule_GetPointer = try symbol("PyCapsule_GetPointer")
        none = try object("_Py_NoneStruct")
        trueObject = try object("_Py_TrueStruct")
        falseObject = try object("_Py_FalseStruct")
        typeError = try exceptionType("PyExc_TypeError")
        valueError = try exceptionType("PyExc_ValueError")
        assertionError = try exceptionType("PyExc_AssertionError")
        runtimeError = try exceptionType("PyExc_RuntimeError")
        osError = try exceptionType("PyExc_OSError")
    }

    // MARK: Type checks through `tp_flags` (the stable-ABI way to do `PyBytes_Check` & co).

    static let listFlag: UInt = 1 << 25
    static let tupleFlag: UInt = 1 << 26
    static let bytesFlag: UInt = 1 << 27
    static let unicodeFlag: UInt = 1 << 28

    /// `Py_TYPE(o)`: `ob_type` follows `ob_refcnt` in every non-debug, GIL build.
    @inline(__always) public func type(of object: Obj) -> Obj {
        object.load(fromByteOffset: MemoryLayout<Int>.size, as: Obj.self)
    }
    @inline(__always) func hasFlag(_ object: Obj, _ flag: UInt) -> Bool {
        PyType_GetFlags(type(of: object)) & flag != 0
    }
    @inline(__always) public func isBytes(_ o: Obj) -> Bool { hasFlag(o, Self.bytesFlag) }
    @inline(__always) public func isUnicode(_ o: Obj) -> Bool { hasFlag(o, Self.unicodeFlag) }
    @inline(__always) public func isList(_ o: Obj) -> Bool { hasFlag(o, Self.listFlag) }
    @inline(__always) public func isTuple(_ o: Obj) -> Bool { hasFlag(o, Self.tupleFlag) }

    // MARK: Conversions (the GIL must be held).

    /// A new `str` from raw bytes decoded as latin-1, PEP 3333's "native string".
    @inline(__always) public func latin1String(_ bytes: UnsafeRawBufferPointer) -> Obj? {
        PyUnicode_DecodeLatin1(bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count, nil)
    }
    public func latin1String(_ string: String) -> Obj? {
        var string = string
        return string.withUTF8 { latin1String(UnsafeRawBufferPointer($0)) }
    }
    public func unicode(_ string: String) -> Obj? {
        var string = string
        return string.withUTF8 { PyUnicode_FromStringAndSize(UnsafeRawPointer($0.baseAddress)?.assumingMemoryBound(to: CChar.self), $0.count) }
    }
    public func bytes(_ buffer: UnsafeRawBufferPointer) -> Obj? {
        PyBytes_FromStringAndSize(buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count)
    }
    /// The bytes of a `bytes` object, valid while it is alive and the GIL held.
    public func withBytes<R>(_ object: Obj, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        var pointer: UnsafeMutablePointer<CChar>? = nil
        var length = 0
        guard PyBytes_AsStringAndSize(object, &pointer, &length) == 0 else { return nil }
        return try body(UnsafeRawBufferPointer(start: pointer, count: length))
    }
    /// A Swift string from a `str`, encoding it as latin-1 (nil, with a Python error set, if it cannot be).
    public func swiftLatin1(_ object: Obj) -> [UInt8]? {
        // ASCII text (nearly every status and header) is its own UTF-8: read it
        // in place, with no intermediate bytes object.
        if let asUTF8 = PyUnicode_AsUTF8AndSize {
            var length = 0
            if let pointer = asUTF8(object, &length) {
                let bytes = UnsafeRawBufferPointer(start: pointer, count: length)
                if !bytes.contains(where: { $0 >= 0x80 }) { return Array(bytes) }
            } else {
                PyErr_Clear()
            }
        }
        guard let encoded = PyUnicode_AsLatin1String(object) else { return nil }
        defer { Py_DecRef(encoded) }
        return withBytes(encoded) { Array($0) }
    }
    /// Calls `body` with the latin-1 bytes of a `str`: in place for ASCII text
    /// (nearly every status and header; no copy), else through a bytes object.
    /// False, with a Python error set, when the text is not latin-1.
    public func withLatin1(_ object: Obj, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        if let asUTF8 = PyUnicode_AsUTF8AndSize {
            var length = 0
            if let pointer = asUTF8(object, &length) {
                let bytes = UnsafeRawBufferPointer(start: pointer, count: length)
                if !bytes.contains(where: { $0 >= 0x80 }) { body(bytes); return true }
            } else {
                PyErr_Clear()
            }
        }
        guard let encoded = PyUnicode_AsLatin1String(object) else { return false }
        defer { Py_DecRef(encoded) }
        withBytes(encoded) { body($0) }
        return true
    }
    /// `str(object)` as a Swift string (for messages).
    public func describe(_ object: Obj) -> String {
        guard let text = PyObject_Str(object) else { PyErr_Clear(); return "<unprintable>" }
        defer { Py_DecRef(text) }
        return swiftString(text) ?? "<unprintable>"
    }
    public func swiftString(_ object: Obj) -> String? {
        guard let encoded = PyUnicode_AsUTF8String(object) else { PyErr_Clear(); return nil }
        defer { Py_DecRef(encoded) }
        return withBytes(encoded) { String(decoding: $0, as: UTF8.self) }
    }
    /// A new reference to `None`.
    public func newNone() -> Obj { Py_IncRef(none); return none }
    public func newBool(_ value: Bool) -> Obj {
        let object = value ? trueObject : falseObject
        Py_IncRef(object)
        return object
    }
    /// A tuple built from new references (stolen).
    public func tuple(_ items: [Obj]) -> Obj? {
        guard let result = PyTuple_New(items.count) else { return nil }
        for (index, item) in items.enumerated() { _ = PyTuple_SetItem(result, index, item) }
        return result
    }
    public func setError(_ type: Obj, _ message: String) {
        PyErr_SetString(type, message)
    }
}
