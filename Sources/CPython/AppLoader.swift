/// Imports the app named by an `AppSpec`, the way gunicorn's `import_app` does,
/// telling apart the failures a supervisor must not retry.
public enum AppLoader {
    /// Returns a new reference to the WSGI callable. Needs the GIL.
    public static func load(_ spec: AppSpec, in runtime: PythonRuntime) throws -> PyObjectPointer {
        let api = runtime.api
        guard let moduleName = api.unicode(spec.module) else { throw CPythonError.initializationFailed(runtime.takeErrorText()) }
        guard let module = runtime.callHelper("import_module", [moduleName]) else {
            throw CPythonError.importFailed(module: spec.module, traceback: runtime.takeErrorText())
        }
        guard let moduleName2 = api.unicode(spec.module), let expression = api.unicode(spec.expression) else {
            throw CPythonError.initializationFailed(runtime.takeErrorText())
        }
        guard let app = runtime.callHelper("find_app", [module, moduleName2, expression]) else {
            if runtime.pendingErrorIs("AppNotFound") {
                throw CPythonError.callableNotFound(runtime.takeErrorLine().replacingPrefix("AppNotFound: "))
            }
            if runtime.pendingErrorIs("AppNotCallable") {
                throw CPythonError.notCallable(runtime.takeErrorLine().replacingPrefix("AppNotCallable: "))
            }
            throw CPythonError.importFailed(module: "\(spec.module):\(spec.expression)", traceback: runtime.takeErrorText())
        }
        return app
    }
}

extension String {
    func replacingPrefix(_ prefix: String) -> String {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self
    }
}
