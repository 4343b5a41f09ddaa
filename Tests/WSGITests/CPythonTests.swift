import Foundation
import Testing
@testable import CPython

@Test func appSpecParsing() throws {
    let plain = try AppSpec(parsing: "app:dynamic_wsgi_app")
    #expect(plain.module == "app" && plain.attribute == "dynamic_wsgi_app" && !plain.isFactoryCall)
    let defaulted = try AppSpec(parsing: "pkg.wsgi")
    #expect(defaulted.module == "pkg.wsgi" && defaulted.attribute == "application")
    let factory = try AppSpec(parsing: "shop:create_app('prod', debug=False)")
    #expect(factory.attribute == "create_app" && factory.isFactoryCall && factory.expression == "create_app('prod', debug=False)")
    #expect(throws: CPythonError.self) { try AppSpec(parsing: "app.py:app") }
    #expect(throws: CPythonError.self) { try AppSpec(parsing: ":app") }
    #expect(throws: CPythonError.self) { try AppSpec(parsing: "bad-module:app") }
    #expect(throws: CPythonError.self) { try AppSpec(parsing: "m:obj.attr") }
    #expect(throws: CPythonError.self) { try AppSpec(parsing: "m:f(") }
    #expect(throws: CPythonError.self) { try AppSpec(parsing: "m:a.b()") }
}

@Test func libraryCandidatesPreferSharedNames() {
    let info = PythonInterpreterInfo(executable: "/v/bin/python", version: [3, 11, 7], prefix: "/v", basePrefix: "/usr", execPrefix: "/v",
                                     baseExecPrefix: "/usr", libdir: "/usr/lib", ldlibrary: "libpython3.11.a", instsoname: "libpython3.11.so.1.0",
                                     multiarch: "x86_64-linux-gnu", frameworkPrefix: nil, sitePackages: [], path: [])
    #expect(info.libraryCandidates == ["/usr/lib/libpython3.11.so.1.0", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", "libpython3.11.so.1.0"])
    #expect(info.isVirtualEnvironment)
}

/// The real interpreter on this machine, started once for the test process.
private let runtime: PythonRuntime? = {
    guard let info = try? PythonInterpreterInfo.ask("python3"),
          let runtime = try? PythonRuntime(info: info, extraPath: [NSTemporaryDirectory()]) else { return nil }
    runtime.releaseMainThread()
    return runtime
}()

@Test func realCPythonLoadsAppsAndReportsErrors() throws {
    let runtime = try #require(runtime, "python3 with a shared libpython is needed")
    let directory = NSTemporaryDirectory() + "gantry-cpython-\(getpid())"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try """
    def app(environ, start_response):
        return [b'x']
    def factory(word, times=1):
        return lambda e, s: [word * times]
    value = 3
    """.write(toFile: directory + "/gantry_unit_app.py", atomically: true, encoding: .utf8)
    try "import nowhere_to_be_found\n".write(toFile: directory + "/gantry_unit_broken.py", atomically: true, encoding: .utf8)
    try runtime.withGIL {
        let api = runtime.api
        let sys = try #require(api.PyImport_ImportModule("sys"))
        let path = try #require(api.PyObject_GetAttrString(sys, "path"))
        let entry = try #require(api.unicode(directory))
        #expect(api.PySequence_Size(path) > 0)
        let append = try #require(api.PyObject_GetAttrString(path, "insert"))
        _ = api.PyObject_CallObject(append, api.tuple([api.PyLong_FromSsize_t(0)!, entry]))

        let app = try AppLoader.load(AppSpec(parsing: "gantry_unit_app:app"), in: runtime)
        #expect(api.PyCallable_Check(app) == 1)
        let made = try AppLoader.load(AppSpec(parsing: "gantry_unit_app:factory(b'ab', times=2)"), in: runtime)
        #expect(api.PyCallable_Check(made) == 1)
        #expect(throws: CPythonError.callableNotFound("Failed to find attribute 'nope' in 'gantry_unit_app'.")) {
            try AppLoader.load(AppSpec(parsing: "gantry_unit_app:nope"), in: runtime)
        }
        #expect(throws: CPythonError.notCallable("Application object must be callable.")) {
            try AppLoader.load(AppSpec(parsing: "gantry_unit_app:value"), in: runtime)
        }
        do {
            _ = try AppLoader.load(AppSpec(parsing: "gantry_unit_broken:app"), in: runtime)
            Issue.record("import should fail")
        } catch CPythonError.importFailed(_, let traceback) {
            #expect(traceback.contains("Traceback"))
            #expect(traceback.contains("ModuleNotFoundError: No module named 'nowhere_to_be_found'"))
        }
        // Latin-1 round trip: PEP 3333 native strings.
        let text = try #require([UInt8]([0x2F, 0xC3, 0xA9]).withUnsafeBytes { api.latin1String($0) })
        #expect(api.swiftLatin1(text) == [0x2F, 0xC3, 0xA9])
        #expect(api.isUnicode(text) && !api.isBytes(text))
        api.Py_DecRef(text)
        api.Py_DecRef(app)
        api.Py_DecRef(made)
    }
}
