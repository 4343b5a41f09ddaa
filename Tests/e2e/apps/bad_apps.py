"""Apps that break PEP 3333 in the ways a server must survive."""


def app(environ, start_response):
    path = environ["PATH_INFO"]
    text = [("Content-Type", "text/plain")]
    if path == "/ok":
        start_response("200 OK", text)
        return [b"ok"]
    if path == "/raise":
        raise RuntimeError("the app raised")
    if path == "/raise-in-iter":
        def gen():
            raise RuntimeError("raised while iterating")
            yield b""
        start_response("200 OK", text)
        return gen()
    if path == "/str":
        start_response("200 OK", text)
        return ["a str, not bytes"]
    if path == "/twice":
        start_response("200 OK", text)
        start_response("201 Created", text)
        return [b"never"]
    if path == "/never":
        return [b"no start_response"]
    if path == "/none":
        start_response("200 OK", text)
        return None
    if path == "/cl-more":
        start_response("200 OK", text + [("Content-Length", "5")])
        return [b"12345", b"6789"]
    if path == "/cl-less":
        start_response("200 OK", text + [("Content-Length", "100")])
        return [b"only a few bytes"]
    if path == "/header-newline":
        start_response("200 OK", text + [("X-Evil", "a\r\nInjected: yes")])
        return [b"never"]
    if path == "/hop-by-hop":
        start_response("200 OK", text + [("Transfer-Encoding", "chunked")])
        return [b"never"]
    if path == "/bad-status":
        start_response("OK", text)
        return [b"never"]
    if path == "/bytes-status":
        start_response(b"200 OK", text)
        return [b"never"]
    if path == "/close-raises":
        class Body:
            def __iter__(self):
                return iter([b"body"])

            def close(self):
                raise RuntimeError("close() raised")
        start_response("200 OK", text)
        return Body()
    start_response("404 Not Found", text)
    return [b"not found"]
