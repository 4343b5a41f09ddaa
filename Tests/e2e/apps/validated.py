"""One app behind wsgiref.validate.validator, with warnings made errors: any
server-side PEP 3333 violation shows up as an AssertionError/WSGIWarning in the log."""
import os
import sys
import time
import warnings
from wsgiref.validate import validator

warnings.simplefilter("error")

HERE = os.path.dirname(os.path.abspath(__file__))


class Tracked:
    """A response iterable that reports close() into wsgi.errors."""

    def __init__(self, environ, chunks, delay=0.0):
        self.environ = environ
        self.chunks = chunks
        self.delay = delay
        self.sent = 0

    def __iter__(self):
        for chunk in self.chunks:
            if self.delay:
                time.sleep(self.delay)
            self.sent += 1
            yield chunk

    def close(self):
        self.environ["wsgi.errors"].write("CLOSED %s after %d chunks\n" % (self.environ["PATH_INFO"], self.sent))


def read_all(stream):
    parts = []
    while True:
        block = stream.read(8192)
        if not block:
            return b"".join(parts)
        parts.append(block)


def raw(environ, start_response):
    path = environ["PATH_INFO"]
    text = [("Content-Type", "text/plain")]
    if path == "/get":
        body = ("%s %s?%s" % (environ["REQUEST_METHOD"], path, environ["QUERY_STRING"])).encode()
        start_response("200 OK", text + [("Content-Length", str(len(body)))])
        return [body]
    if path == "/post":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        start_response("200 OK", text + [("Content-Length", str(len(body)))])
        return [body]
    if path == "/chunked":
        assert environ["wsgi.input_terminated"] is True
        assert "CONTENT_LENGTH" not in environ or environ["CONTENT_LENGTH"] == ""
        body = read_all(environ["wsgi.input"])
        start_response("200 OK", text)
        return Tracked(environ, [b"got ", str(len(body)).encode(), b" ", body[:16]])
    if path == "/lines":
        stream = environ["wsgi.input"]
        first = stream.readline()
        limited = stream.readline(3)
        rest = stream.readlines()
        out = b"|".join([first, limited] + rest)
        start_response("200 OK", text)
        return [out]
    if path == "/iterate":
        lines = [line for line in environ["wsgi.input"]]
        start_response("200 OK", text)
        return [str(len(lines)).encode(), b":", b"".join(lines)]
    if path == "/write":
        write = start_response("200 OK", text)
        write(b"written ")
        write(b"twice ")
        return [b"and returned"]
    if path == "/file":
        f = open(os.path.join(HERE, "static.txt"), "rb")
        start_response("200 OK", text)
        return environ["wsgi.file_wrapper"](f, 4096)
    if path == "/gen":
        start_response("200 OK", text)
        return Tracked(environ, [b"one ", b"", b"two ", b"three"])
    if path == "/excinfo":
        start_response("200 OK", text)
        try:
            raise ValueError("replaced before any byte was sent")
        except ValueError:
            start_response("500 Internal Server Error", text, sys.exc_info())
        return [b"replaced"]
    if path == "/excinfo-late":
        def late():
            yield b"first chunk "
            try:
                raise ValueError("too late to replace")
            except ValueError:
                start_response("500 Internal Server Error", text, sys.exc_info())
            yield b"never"
        start_response("200 OK", text)
        return late()
    if path == "/disconnect":
        start_response("200 OK", text)
        return Tracked(environ, [b"x" * 65536] * 400, delay=0.02)
    start_response("404 Not Found", text)
    return [b"not found"]


app = validator(raw)
