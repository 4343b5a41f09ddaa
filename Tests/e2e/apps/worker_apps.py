"""Apps for worker behaviour tests: environ echo, slow requests, factories."""
import json
import os
import threading
import time

_lock = threading.Lock()
_running = 0
_peak = 0


def environ_json(environ, start_response):
    keys = ["REMOTE_ADDR", "REMOTE_PORT", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME", "SERVER_PORT",
            "SERVER_PROTOCOL", "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "HTTP_X_MULTI", "CONTENT_TYPE",
            "CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_X_WITH_UNDERSCORE", "GANTRY_TEST_ENV", "HTTP_X_LATIN",
            "RAW_URI"]
    data = {k: environ.get(k) for k in keys}
    data["GANTRY_TEST_ENV"] = os.environ.get("GANTRY_TEST_ENV")
    data["cwd"] = os.getcwd()
    data["path_info_bytes"] = list(environ["PATH_INFO"].encode("latin-1"))
    body = json.dumps(data).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def slow(environ, start_response):
    global _running, _peak
    seconds = float(environ.get("QUERY_STRING") or "0.3")
    with _lock:
        _running += 1
        _peak = max(_peak, _running)
    time.sleep(seconds)
    with _lock:
        _running -= 1
        peak = _peak
    body = ("slept %s peak %d thread %s" % (seconds, peak, threading.current_thread().name)).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def hang(environ, start_response):
    if environ["PATH_INFO"] == "/hang":
        while True:  # holds the GIL in pure Python, like a stuck app
            pass
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(3600)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"fine"]


def create_app(greeting="hello", punctuation="!"):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [(greeting + punctuation).encode()]
    return app


def broken_factory():
    raise KeyError("missing setting inside the factory")


not_callable = 42


def read_whole_body(environ, start_response):
    """read() with no size and readline() of one long line, past the server's buffer limit."""
    stream = environ["wsgi.input"]
    if environ["PATH_INFO"] == "/line":
        data = stream.readline()
    else:
        data = stream.read()
    body = ("%d %d" % (len(data), sum(data) % 1000003)).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


import io

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static.txt")


class NoPythonReads(io.FileIO):
    """A real file whose Python-level reads fail: only sendfile can serve it."""

    def read(self, *args):
        raise RuntimeError("read() called: the file was not sent with sendfile")

    def close(self):
        os.environ["GANTRY_FILE_CLOSED"] = "yes"
        super().close()


def sendfile_app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/closed":
        body = os.environ.get("GANTRY_FILE_CLOSED", "no").encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    f = NoPythonReads(STATIC, "r")
    headers = [("Content-Type", "text/plain")]
    if path == "/offset":
        f.seek(100)
    if path == "/declared":
        headers.append(("Content-Length", "50"))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 1024)


def writer(environ, start_response):
    """Streams with the legacy write() callable: 4 MiB in 64 KiB pieces."""
    write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
    chunk = b"w" * 65536
    for _ in range(64):
        write(chunk)
    return []


def big_stream(environ, start_response):
    """A generator of 64 MiB, for a client that reads slowly."""
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(64 << 20))])
    chunk = b"s" * 65536

    def body():
        for _ in range(1024):
            yield chunk
    return body()
