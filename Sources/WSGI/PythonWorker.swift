import CPython
import Dispatch
import Foundation
import NIOCore
import Synchronization

/// One Python thread: takes requests from the queue and runs the app for them,
/// holding the GIL only while in Python (it is released while waiting for the
/// next request, for body bytes, or for the socket to drain).
final class PythonWorker: @unchecked Sendable {
    typealias Obj = PyObjectPointer
    let context: WSGIPythonContext
    let queue: RequestQueue
    let slot: RunningSlot
    let log: ErrorLog
    let onJobDone: @Sendable (WSGIJob) -> Void
    var api: PythonAPI { context.api }

    // Per-thread builtins, bound to this worker (created on the thread, GIL held).
    private var startResponseFunction: Obj?
    private var writeFunction: Obj?
    private var readFunction: Obj?
    /// `wsgi.input` of every request without a body: its token (-1) matches no
    /// job, so it reads as empty; one object instead of one per request.
    private var emptyInput: Obj?
    private var threadState: UnsafeMutableRawPointer?

    // The request being run (Python thread only).
    private var job: WSGIJob?
    private var head: ResponseHead?
    private var headersSent = false
    private var bodyBytes = 0
    private var ended = false
    private var abandoned = false
    private var pending: [ResponsePart] = []
    private var pendingBytes = 0
    private var reportedOverflow = false
    /// Responses in a row that were let wait for the next one.
    private var waitedInRow = 0
    static let maxWaitingInRow = Int(getenv("GANTRY_WSGI_BATCH").flatMap { Int(String(cString: $0)) } ?? 3)

    init(context: WSGIPythonContext, queue: RequestQueue, slot: RunningSlot, log: ErrorLog, onJobDone: @escaping @Sendable (WSGIJob) -> Void) {
        self.context = context
        self.queue = queue
        self.slot = slot
        self.log = log
        self.onJobDone = onJobDone
    }

    /// Starts the thread and returns once its builtins exist: the event loop may
    /// run requests with them (`runInline`) as soon as the worker listens.
    func start(name: String) {
        let ready = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in run(ready: ready) }
        thread.name = name
        thread.stackSize = 16 << 20  // Python recursion wants a big stack
        thread.start()
        ready.wait()
    }

    private func run(ready: DispatchSemaphore) {
        _ = api.PyGILState_Ensure()
        startResponseFunction = PythonFunction.make(api: api, name: "start_response", owner: self, implementation: startResponseImplementation)
        writeFunction = PythonFunction.make(api: api, name: "write", owner: self, implementation: writeImplementation)
        readFunction = PythonFunction.make(api: api, name: "read", owner: self, implementation: readImplementation)
        emptyInput = makeInput(token: -1)
        threadState = api.PyEval_SaveThread()
        ready.signal()
        while let (job, continuing) = queue.pop() {
            slot.set(job)
            api.PyEval_RestoreThread(threadState)
            if continuing, let result = handedOverResult {
                handedOverResult = nil
                respond(job, result)
            } else {
                handle(job)
            }
            threadState = api.PyEval_SaveThread()
            slot.set(nil)
            if queue.exclusive { queue.release() }
            onJobDone(job)
        }
    }

    /// Runs `body` with the GIL released (Python thread only).
    @inline(__always) func withoutGIL<R>(_ body: () -> R) -> R {
        let state = api.PyEval_SaveThread()
        defer { api.PyEval_RestoreThread(state) }
        return body()
    }

    // MARK: Running a request on the event loop (`--threads 1`)

    /// Whether the loop may run requests (`runInline`): off once the app uses `write()`.
    let inlineAllowed = Atomic<Bool>(true)
    /// The event loop's own Python thread state (made on its first request).
    private var loopThreadState: UnsafeMutableRawPointer?
    /// A request is running on the loop: nothing may wait for the loop.
    private var runningOnLoop = false
    /// The response the loop started and the Python thread iterates.
    private var handedOverResult: Obj?

    /// On the event loop, which owns the app (`RequestQueue.tryClaim`): runs a
    /// request that has no body, as gunicorn's sync worker does, with no hand-off
    /// to the Python thread and back (two context switches per request when the
    /// two threads share a core). A response that is a list or tuple (most apps)
    /// or a file is sent from here; any other iterable may stream for long and
    /// wait for a slow client, so the Python thread iterates it
    /// (`RequestQueue.handOver`). Returns true when the request is done.
    func runInline(_ job: WSGIJob) -> Bool {
        if let loopThreadState {
            api.PyEval_RestoreThread(loopThreadState)
        } else {
            _ = api.PyGILState_Ensure()  // a thread state for this thread, kept for good
        }
        slot.set(job)
        job.setOnLoop(true)
        runningOnLoop = true
        var done = true
        if let result = begin(job) {
            if api.isList(result) || api.isTuple(result) || api.type(of: result) == context.fileWrapperClass {
                respond(job, result)
            } else {
                handedOverResult = result
                done = false
            }
        }
        runningOnLoop = false
        job.setOnLoop(false)
        loopThreadState = api.PyEval_SaveThread()
        if done { slot.set(nil) } else { queue.handOver(job) }
        return done
    }

    // MARK: Running one request (GIL held)

    private func handle(_ job: WSGIJob) {
        guard let result = begin(job) else { return }
        respond(job, result)
    }

    /// Calls the app: its response iterable, or nil when the request is over
    /// (abandoned, or the app failed and the failure was answered).
    private func begin(_ job: WSGIJob) -> Obj? {
        self.job = job
        head = nil
        headersSent = false
        bodyBytes = 0
        ended = false
        abandoned = job.isAbandoned
        reportedOverflow = false
        if abandoned { endRequest(); return nil }
        job.markStarted()

        guard let environ = makeEnviron(job) else {
            fail(job, "building the environ failed:\n\(context.runtime.takeErrorText())")
            endRequest()
            return nil
        }
        guard let arguments = api.PyTuple_New(2) else {
            api.Py_DecRef(environ)
            fail(job, context.runtime.takeErrorText())
            endRequest()
            return nil
        }
        _ = api.PyTuple_SetItem(arguments, 0, environ)
        api.Py_IncRef(startResponseFunction)
        _ = api.PyTuple_SetItem(arguments, 1, startResponseFunction)
        let result = api.PyObject_Call(context.app, arguments, nil)
        api.Py_DecRef(arguments)
        guard let result else {
            fail(job, "Error handling request \(requestDescription(job)):\n\(context.runtime.takeErrorText())")
            endRequest()
            return nil
        }
        return result
    }

    private func endRequest() {
        job = nil
        pending.removeAll(keepingCapacity: true)
        pendingBytes = 0
    }

    /// Sends the app's response iterable `result` (a new reference, consumed).
    private func respond(_ job: WSGIJob, _ result: Obj) {
        defer {
            closeResult(result, job)
            api.Py_DecRef(result)
            endRequest()
        }
        iterate(job, result)
    }

    private func iterate(_ job: WSGIJob, _ result: Obj) {
        if api.type(of: result) == context.fileWrapperClass, trySendfile(result, job) { return }
        if api.isList(result) || api.isTuple(result) {
            let isList = api.isList(result)
            let count = isList ? api.PyList_Size(result) : api.PyTuple_Size(result)
            var index = 0
            while index < count, !ended, !abandoned {
                // Re-read the size: the app may mutate its list while we iterate.
                if isList && index >= api.PyList_Size(result) { break }
                guard let item = isList ? api.PyList_GetItem(result, index) : api.PyTuple_GetItem(result, index) else { break }
                guard emit(item, job, flush: false) else {
                    fail(job, "Error handling request \(requestDescription(job)):\n\(context.runtime.takeErrorText())")
                    return
                }
                index += 1
            }
            if ended, !abandoned, !reportedOverflow, let declared = head?.contentLength {
                let remaining = isList ? api.PyList_Size(result) : count
                while index < remaining {
                    if let item = isList ? api.PyList_GetItem(result, index) : api.PyTuple_GetItem(result, index),
                       api.isBytes(item), api.PyBytes_Size(item) > 0 {
                        reportOverflow(job, declared)
                        break
                    }
                    index += 1
                }
            }
        } else {
            guard let iterator = api.PyObject_GetIter(result) else {
                fail(job, "Error handling request \(requestDescription(job)): the app returned a non-iterable:\n\(context.runtime.takeErrorText())")
                return
            }
            defer { api.Py_DecRef(iterator) }
            while !ended, !abandoned, let item = api.PyIter_Next(iterator) {
                let ok = emit(item, job, flush: true)
                api.Py_DecRef(item)
                guard ok else {
                    fail(job, "Error handling request \(requestDescription(job)):\n\(context.runtime.takeErrorText())")
                    return
                }
            }
            if api.PyErr_Occurred() != nil {
                fail(job, "Error handling request \(requestDescription(job)):\n\(context.runtime.takeErrorText())")
                return
            }
            // Content-Length reached: one more look tells whether the app lied.
            if ended, !abandoned, !reportedOverflow, let declared = head?.contentLength {
                if let item = api.PyIter_Next(iterator) {
                    if api.isBytes(item), api.PyBytes_Size(item) > 0 { reportOverflow(job, declared) }
                    api.Py_DecRef(item)
                } else {
                    api.PyErr_Clear()
                }
            }
        }
        finish(job)
    }

    private func requestDescription(_ job: WSGIJob) -> String {
        let query = job.environ.queryString.isEmpty ? "" : "?\(job.environ.queryString)"
        return "\(job.environ.requestMethod) \(String(decoding: job.environ.scriptName + job.environ.pathInfo, as: UTF8.self))\(query)"
    }

    /// Calls the response's `close()`, as PEP 3333 requires on every path.
    private func closeResult(_ result: Obj, _ job: WSGIJob) {
        // A plain list or tuple (most apps) has none: skip the failing attribute lookup.
        let type = api.type(of: result)
        if type == context.listType || type == context.tupleType { return }
        guard api.PyObject_HasAttrString(result, "close") != 0 else { return }
        guard let close = api.PyObject_GetAttrString(result, "close") else { api.PyErr_Clear(); return }
        defer { api.Py_DecRef(close) }
        if let value = api.PyObject_CallObject(close, nil) {
            api.Py_DecRef(value)
        } else {
            log.error("Error closing the response of \(requestDescription(job)):\n\(context.runtime.takeErrorText())")
        }
    }

    /// One body chunk from the app. False (with a Python error set) on app errors.
    private func emit(_ item: Obj, _ job: WSGIJob, flush: Bool) -> Bool {
        guard api.isBytes(item) else {
            let typeName = api.describe(api.type(of: item))
            api.setError(api.typeError, "response body items must be bytes, not \(typeName) (PEP 3333)")
            return false
        }
        var length = 0
        var pointer: UnsafeMutablePointer<CChar>? = nil
        _ = api.PyBytes_AsStringAndSize(item, &pointer, &length)
        if length == 0 { return true }
        return sendBody(UnsafeRawBufferPointer(start: pointer, count: length), job, flush: flush)
    }

    private func sendBody(_ bytes: UnsafeRawBufferPointer, _ job: WSGIJob, flush: Bool) -> Bool {
        guard let head else {
            api.setError(api.assertionError, "the app sent body data before calling start_response()")
            return false
        }
        var bytes = bytes
        if let declared = head.contentLength {
            let room = declared - bodyBytes
            if bytes.count > room {
                reportOverflow(job, declared)
                bytes = UnsafeRawBufferPointer(rebasing: bytes[0..<room])
            }
        }
        if !headersSent {
            guard job.beginResponse() else { abandoned = true; return true }
            headersSent = true
            pending.append(.head(head))
        }
        bodyBytes += bytes.count
        let sendsBody = !job.isHead && !head.forbidsBody
        if sendsBody && bytes.count > 0 {
            var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            pending.append(.body(buffer))
            pendingBytes += bytes.count
        }
        if let declared = head.contentLength, bodyBytes >= declared {
            pending.append(.end(complete: true))
            ended = true
        }
        if flush || ended { flushPending(job) }
        return true
    }

    private func reportOverflow(_ job: WSGIJob, _ declared: Int) {
        guard !reportedOverflow else { return }
        reportedOverflow = true
        log.error("\(requestDescription(job)): the app sent more than its Content-Length of \(declared) bytes; the rest is dropped")
    }

    private func flushPending(_ job: WSGIJob) {
        guard !pending.isEmpty else { return }
        let parts = pending
        let bytes = pendingBytes
        pending.removeAll(keepingCapacity: true)
        pendingBytes = 0
        // A finished response may wait for the next ones (see `ResponseMailbox`) when more
        // requests are queued, a few in a row at most.
        var mayWait = false
        if ended, !runningOnLoop {
            mayWait = waitedInRow < Self.maxWaitingInRow && queue.hasWaiting
            waitedInRow = mayWait ? waitedInRow + 1 : 0
        }
        // The loop cannot wait for its own socket to drain (see `write`).
        let sent = runningOnLoop
            ? job.send(parts, bytes: bytes, ends: ended, waiting: { _ in })
            : job.send(parts, bytes: bytes, ends: ended, mayWait: mayWait, waiting: { wait in withoutGIL(wait) })
        if !sent { abandoned = true }
    }

    /// The app's iterable is exhausted: end the response.
    private func finish(_ job: WSGIJob) {
        if abandoned { return }
        if ended { flushPending(job); return }
        guard let head else {
            api.setError(api.assertionError, "the app returned without calling start_response()")
            fail(job, "Error handling request \(requestDescription(job)):\n\(context.runtime.takeErrorText())")
            return
        }
        if !headersSent {
            guard job.beginResponse() else { return }
            headersSent = true
            pending.append(.head(head))
        }
        // The whole body is known (a list, or nothing): say how long it is
        // instead of chunking it.
        if head.contentLength == nil, case .head(var known)? = pending.first, !head.forbidsBody {
            try? known.append(name: Array("Content-Length".utf8), value: Array(String(bodyBytes).utf8))
            pending[0] = .head(known)
        }
        var complete = true
        if let declared = head.contentLength, bodyBytes < declared, !job.isHead, !head.forbidsBody {
            log.error("\(requestDescription(job)): the app sent \(bodyBytes) of its Content-Length of \(declared) bytes; closing the connection")
            complete = false
        }
        pending.append(.end(complete: complete))
        ended = true
        flushPending(job)
    }

    /// An error in the app: 500 if nothing was sent yet, else cut the connection.
    private func fail(_ job: WSGIJob, _ message: String) {
        log.error(message)
        if abandoned || ended { return }
        pending.removeAll()
        pendingBytes = 0
        if !headersSent && job.beginResponse() {
            headersSent = true
            ended = true
            let body = "<html><head><title>Internal Server Error</title></head><body><h1><p>Internal Server Error</p></h1></body></html>"
            var head = try! ResponseHead(status: Array("500 Internal Server Error".utf8))
            try! head.append(name: Array("Content-Type".utf8), value: Array("text/html".utf8))
            try! head.append(name: Array("Content-Length".utf8), value: Array(String(body.utf8.count).utf8))
            head.wantsClose = true
            var buffer = ByteBufferAllocator().buffer(capacity: body.utf8.count)
            buffer.writeString(body)
            _ = job.send([.head(head), .body(buffer), .end(complete: true)], bytes: 0, ends: true, waiting: { _ in })
        } else {
            ended = true
            _ = job.send([.end(complete: false)], bytes: 0, ends: true, waiting: { _ in })
        }
    }

    /// `wsgi.file_wrapper` around a regular file: sendfile instead of Python reads.
    private func trySendfile(_ wrapper: Obj, _ job: WSGIJob) -> Bool {
        guard var head, !headersSent else { return false }
        api.Py_IncRef(wrapper)
        guard let parameters = context.runtime.callHelper("sendfile_params", [wrapper]) else { api.PyErr_Clear(); return false }
        defer { api.Py_DecRef(parameters) }
        guard api.isTuple(parameters), api.PyTuple_Size(parameters) == 3 else { return false }
        let fd = Int32(truncatingIfNeeded: api.PyLong_AsSsize_t(api.PyTuple_GetItem(parameters, 0)!))
        let offset = api.PyLong_AsSsize_t(api.PyTuple_GetItem(parameters, 1)!)
        let size = api.PyLong_AsSsize_t(api.PyTuple_GetItem(parameters, 2)!)
        let available = max(0, size - offset)
        var length = available
        var complete = true
        if let declared = head.contentLength {
            if declared > available {
                log.error("\(requestDescription(job)): Content-Length \(declared) but the file has \(available) bytes left; closing the connection")
                complete = false
            } else {
                length = declared
            }
        } else {
            try? head.append(name: Array("Content-Length".utf8), value: Array(String(available).utf8))
        }
        guard job.beginResponse() else { close(fd); abandoned = true; return true }
        headersSent = true
        ended = true
        if job.isHead || head.forbidsBody || length == 0 {
            close(fd)
            _ = job.send([.head(head), .end(complete: true)], bytes: 0, ends: true, waiting: { _ in })
        } else {
            let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: fd)
            let region = FileRegion(fileHandle: handle, readerIndex: offset, endIndex: offset + length)
            _ = job.send([.head(head), .file(region), .end(complete: complete)], bytes: 0, ends: true, waiting: { _ in })
        }
        return true
    }

    // MARK: The environ (GIL held)

    private func makeEnviron(_ job: WSGIJob) -> Obj? {
        let c = context
        let environ = job.environ
        guard let dict = api.PyDict_New() else { return nil }
        var ok = true
        @inline(__always) func set(_ key: Obj, _ value: Obj?, owned: Bool) {
            guard let value else { ok = false; return }
            if api.PyDict_SetItem(dict, key, value) != 0 { ok = false }
            if owned { api.Py_DecRef(value) }
        }
        @inline(__always) func set(_ key: Obj, _ pair: (Obj?, owned: Bool)) { set(key, pair.0, owned: pair.owned) }
        set(c.kRequestMethod, c.method(environ.requestMethod))
        set(c.kScriptName, environ.scriptName.isEmpty ? c.emptyString : environ.scriptName.withUnsafeBytes { api.latin1String($0) },
            owned: !environ.scriptName.isEmpty)
        set(c.kPathInfo, environ.pathInfo.withUnsafeBytes { api.latin1String($0) }, owned: true)
        set(c.kQueryString, environ.queryString.isEmpty ? c.emptyString : c.native(environ.queryString), owned: !environ.queryString.isEmpty)
        set(c.kRawURI, c.native(environ.rawURI), owned: true)
        set(c.kServerProtocol, c.serverProtocol(environ.serverProtocol))
        set(c.kServerName, c.serverValue(environ.serverName))
        set(c.kServerPort, c.serverValue(environ.serverPort))
        set(c.kRemoteAddr, c.serverValue(environ.remoteAddr))
        if let port = environ.remotePort { set(c.kRemotePort, c.native(port), owned: true) }
        set(c.kServerSoftware, c.serverSoftware, owned: false)
        for header in environ.headers {
            let (key, ownedKey) = c.headerKey(header.key)
            guard let key else { ok = false; continue }
            set(key, c.native(header.value), owned: true)
            if ownedKey { api.Py_DecRef(key) }
        }
        set(c.kVersion, c.version, owned: false)
        set(c.kURLScheme, environ.urlScheme == "https" ? c.https : c.http, owned: false)
        if job.body === RequestBodyStream.empty, let emptyInput {
            set(c.kInput, emptyInput, owned: false)
        } else {
            set(c.kInput, makeInput(token: job.id), owned: true)
        }
        set(c.kErrors, c.errors, owned: false)
        set(c.kMultithread, c.multithread, owned: false)
        set(c.kMultiprocess, c.multiprocess, owned: false)
        set(c.kRunOnce, api.falseObject, owned: false)
        set(c.kFileWrapper, c.fileWrapperClass, owned: false)
        set(c.kInputTerminated, api.trueObject, owned: false)
        if !ok {
            api.Py_DecRef(dict)
            if api.PyErr_Occurred() == nil { api.setError(api.runtimeError, "environ construction failed") }
            return nil
        }
        return dict
    }

    /// A new `wsgi.input` reading the body of the job `token` (nil with a Python error set).
    private func makeInput(token: Int) -> Obj? {
        guard let tokenObject = api.PyLong_FromSsize_t(token), let read = readFunction else { return nil }
        api.Py_IncRef(read)
        guard let arguments = api.tuple([read, tokenObject]) else { return nil }
        defer { api.Py_DecRef(arguments) }
        return api.PyObject_CallObject(context.inputStreamClass, arguments)
    }

    // MARK: Callables given to the app (GIL held)

    fileprivate func startResponse(_ arguments: Obj) -> Obj? {
        guard job != nil else {
            api.setError(api.runtimeError, "start_response() called outside of a request")
            return nil
        }
        let count = api.PyTuple_Size(arguments)
        guard count == 2 || count == 3 else {
            api.setError(api.typeError, "start_response() takes 2 or 3 arguments (\(count) given)")
            return nil
        }
        let status = api.PyTuple_GetItem(arguments, 0)!
        let headers = api.PyTuple_GetItem(arguments, 1)!
        let excInfo = count == 3 ? api.PyTuple_GetItem(arguments, 2) : nil
        if let excInfo, excInfo != api.none {
            if headersSent {
                // PEP 3333: re-raise the app's exception when the headers are out.
                guard api.isTuple(excInfo), api.PyTuple_Size(excInfo) == 3 else {
                    api.setError(api.typeError, "exc_info must be a (type, value, traceback) tuple")
                    return nil
                }
                let type = api.PyTuple_GetItem(excInfo, 0), value = api.PyTuple_GetItem(excInfo, 1), traceback = api.PyTuple_GetItem(excInfo, 2)
                api.Py_IncRef(type); api.Py_IncRef(value); api.Py_IncRef(traceback)
                api.PyErr_Restore(type, value == api.none ? nil : value, traceback == api.none ? nil : traceback)
                return nil
            }
        } else if head != nil {
            api.setError(api.assertionError, "start_response() called a second time without exc_info (PEP 3333)")
            return nil
        }
        guard api.isUnicode(status) else {
            api.setError(api.typeError, "status must be str, not \(api.describe(api.type(of: status)))")
            return nil
        }
        var made: Result<ResponseHead, ResponseHeadError>?
        guard api.withLatin1(status, { bytes in made = Result { () throws(ResponseHeadError) in try ResponseHead(statusBytes: bytes) } }),
              let made else { return nil }
        do {
            var newHead = try made.get()
            let headerCount = api.PySequence_Size(headers)
            guard headerCount >= 0 else { return nil }
            guard api.isList(headers) || api.isTuple(headers) else {
                api.setError(api.typeError, "response headers must be a list of (name, value) tuples")
                return nil
            }
            for index in 0..<headerCount {
                guard let pair = api.PySequence_GetItem(headers, index) else { return nil }
                defer { api.Py_DecRef(pair) }
                guard api.isTuple(pair), api.PyTuple_Size(pair) == 2,
                      let name = api.PyTuple_GetItem(pair, 0), let value = api.PyTuple_GetItem(pair, 1),
                      api.isUnicode(name), api.isUnicode(value) else {
                    api.setError(api.typeError, "each response header must be a (str, str) tuple")
                    return nil
                }
                // Checked and encoded straight from the str objects' bytes (no arrays).
                var failure: ResponseHeadError?
                var convertedBoth = false
                _ = api.withLatin1(name) { nameBytes in
                    convertedBoth = api.withLatin1(value) { valueBytes in
                        do throws(ResponseHeadError) { try newHead.append(name: nameBytes, value: valueBytes) } catch { failure = error }
                    }
                }
                guard convertedBoth else { return nil }  // not latin-1: Python's error is set
                if let failure { throw failure }
            }
            head = newHead
        } catch {
            api.setError(api.valueError, "\(error)")
            return nil
        }
        api.Py_IncRef(writeFunction)
        return writeFunction
    }

    fileprivate func write(_ arguments: Obj) -> Obj? {
        guard let job else {
            api.setError(api.runtimeError, "write() called outside of a request")
            return nil
        }
        guard api.PyTuple_Size(arguments) == 1, let data = api.PyTuple_GetItem(arguments, 0) else {
            api.setError(api.typeError, "write() takes exactly one bytes argument")
            return nil
        }
        if abandoned {
            api.setError(api.osError, "client disconnected")
            return nil
        }
        if runningOnLoop, inlineAllowed.exchange(false, ordering: .relaxed) {
            // write() streams from inside the app call, which cannot move to the
            // Python thread: its bytes wait on the loop until the call returns.
            // Later requests go to the Python thread, where write() waits for a slow client.
            log.info("the app calls write(): its requests run on the Python thread from now on (pid \(getpid()))")
        }
        guard emit(data, job, flush: true) else { return nil }
        if abandoned {
            api.setError(api.osError, "client disconnected")
            return nil
        }
        return api.newNone()
    }

    fileprivate func read(_ arguments: Obj) -> Obj? {
        guard api.PyTuple_Size(arguments) == 3,
              let tokenObject = api.PyTuple_GetItem(arguments, 0), let modeObject = api.PyTuple_GetItem(arguments, 1),
              let sizeObject = api.PyTuple_GetItem(arguments, 2) else {
            api.setError(api.typeError, "bad call")
            return nil
        }
        let token = api.PyLong_AsSsize_t(tokenObject)
        let mode: RequestBodyStream.Mode = api.PyLong_AsSsize_t(modeObject) == 1 ? .readline : .read
        let size = api.PyLong_AsSsize_t(sizeObject)
        if api.PyErr_Occurred() != nil { return nil }
        guard let job, job.id == token else {
            // A stream kept past its request reads as empty.
            return api.bytes(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        let limit: Int? = size < 0 ? nil : size
        let result = job.body.tryRead(mode, limit: limit) ?? withoutGIL { job.body.read(mode, limit: limit) }
        switch result {
        case .success(let bytes):
            return bytes.withUnsafeBytes { api.bytes($0) }
        case .failure(let failure):
            api.setError(api.osError, "\(failure)")
            return nil
        }
    }
}

private let startResponseImplementation: PythonFunction.Implementation = { capsule, arguments in
    guard let worker: PythonWorker = PythonFunction.owner(capsule), let arguments else { return nil }
    return worker.startResponse(arguments)
}

private let writeImplementation: PythonFunction.Implementation = { capsule, arguments in
    guard let worker: PythonWorker = PythonFunction.owner(capsule), let arguments else { return nil }
    return worker.write(arguments)
}

private let readImplementation: PythonFunction.Implementation = { capsule, arguments in
    guard let worker: PythonWorker = PythonFunction.owner(capsule), let arguments else { return nil }
    return worker.read(arguments)
}
