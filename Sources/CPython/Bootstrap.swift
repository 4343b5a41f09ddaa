/// Python-side helpers, run once in a private namespace after the interpreter
/// starts. Only what is simpler in Python lives here (stream classes, gunicorn's
/// app lookup); the request path calls Swift functions directly.
enum Bootstrap {
    static let source = #"""
import sys, os, stat, traceback

def configure(prefix, exec_prefix, executable, site_dirs, extra_path):
    # When the interpreter did not pick up the virtualenv by itself (no
    # Py_SetProgramName), make its site-packages importable as python would.
    if sys.prefix != prefix:
        import site
        sys.prefix, sys.exec_prefix = prefix, exec_prefix
        for d in site_dirs:
            if d not in sys.path:
                site.addsitedir(d)
    if executable:
        sys.executable = executable
    for p in reversed(extra_path):
        if p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)
    if not sys.argv or sys.argv == ['']:
        sys.argv = [executable or 'gantry']

def format_exception(t, v, tb):
    return ''.join(traceback.format_exception(t, v, tb))

class AppNotFound(Exception):
    pass

class AppNotCallable(Exception):
    pass

def _called_with_wrong_args(f):
    tb = sys.exc_info()[2]
    try:
        while tb is not None:
            if tb.tb_frame.f_code is getattr(f, '__code__', None):
                return False
            tb = tb.tb_next
        return True
    finally:
        del tb

def import_module(module):
    import importlib
    return importlib.import_module(module)

def find_app(mod, module, obj):
    # gunicorn.util.import_app, after the import.
    import ast
    try:
        expression = ast.parse(obj, mode="eval").body
    except SyntaxError:
        raise AppNotFound("Failed to parse %r as an attribute name or function call." % obj)
    if isinstance(expression, ast.Name):
        name = expression.id
        args = kwargs = None
    elif isinstance(expression, ast.Call):
        if not isinstance(expression.func, ast.Name):
            raise AppNotFound("Function reference must be a simple name: %r" % obj)
        name = expression.func.id
        try:
            args = [ast.literal_eval(arg) for arg in expression.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in expression.keywords}
        except ValueError:
            raise AppNotFound("Failed to parse arguments as literal values: %r" % obj)
    else:
        raise AppNotFound("Failed to parse %r as an attribute name or function call." % obj)
    try:
        app = getattr(mod, name)
    except AttributeError:
        raise AppNotFound("Failed to find attribute %r in %r." % (name, module))
    if args is not None:
        try:
            app = app(*args, **kwargs)
        except TypeError as e:
            if _called_with_wrong_args(app):
                raise AppNotFound("".join(traceback.format_exception_only(TypeError, e)).strip())
            raise
    if app is None:
        raise AppNotFound("Failed to find application object: %r" % obj)
    if not callable(app):
        raise AppNotCallable("Application object must be callable.")
    return app

class InputStream(object):
    """wsgi.input: bytes come from Swift, which reads the socket with backpressure."""
    __slots__ = ('_read', '_token')

    def __init__(self, read, token):
        self._read = read
        self._token = token

    def read(self, size=-1):
        return self._read(self._token, 0, -1 if size is None else size)

    def read1(self, size=-1):
        return self.read(size)

    def readline(self, size=-1):
        return self._read(self._token, 1, -1 if size is None else size)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self._read(self._token, 1, -1)
            if not line:
                break
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self._read(self._token, 1, -1)
        if not line:
            raise StopIteration
        return line

    def readable(self):
        return True

    def close(self):
        pass

class ErrorStream(object):
    """wsgi.errors: text goes to the worker's error log."""
    __slots__ = ('_write',)

    def __init__(self, write):
        self._write = write

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("wsgi.errors.write() argument must be str, not %s" % type(s).__name__)
        self._write(s)

    def writelines(self, seq):
        for s in seq:
            self.write(s)

    def flush(self):
        pass

class FileWrapper(object):
    """wsgi.file_wrapper: served with sendfile when it wraps a regular file."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __getitem__(self, key):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise IndexError

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

def sendfile_params(wrapper):
    """(duplicated fd, offset, size) when the wrapper holds a regular file, else None."""
    f = wrapper.filelike
    try:
        fd = f.fileno()
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        offset = f.tell() if hasattr(f, 'tell') else os.lseek(fd, 0, os.SEEK_CUR)
        return (os.dup(fd), offset, st.st_size)
    except Exception:
        return None

def run_atexit():
    import atexit
    atexit._run_exitfuncs()
"""#
}
