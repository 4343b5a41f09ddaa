"""`X-Accel-Redirect` from the app (django-sendfile's nginx backend, protected downloads): the
front drops the upstream's body and serves an `internal` location instead, keeping the headers
nginx keeps; and `proxy_intercept_errors`: the app's error answers get the front's `error_page`.
Side by side with the real nginx, both proxying to the same Python upstream."""
import http.client
import http.server
import threading

import pytest

from conftest import free_port
from nginx_oracle import needs_nginx, side_by_side

pytestmark = needs_nginx

REDIRECTS = {
    "/download/report.txt": "/protected/report.txt",
    "/download/with-args": "/protected/report.txt?x=1",
    "/download/named": "@fallback",
    "/download/no-such-named": "@nowhere",
    "/download/unsafe": "/protected/../../etc/passwd",
    "/download/missing": "/protected/missing.txt",
}


class _App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, with_body):
        body = b"the app's own body, never shown"
        self.send_response({"missing": 404, "boom": 500}.get(self.path.rsplit("/", 1)[-1], 200))
        target = REDIRECTS.get(self.path.split("?")[0])
        if target:
            self.send_header("X-Accel-Redirect", target)
            self.send_header("Content-Disposition", 'attachment; filename="report.txt"')
            self.send_header("Set-Cookie", "downloaded=1")
            self.send_header("X-App-Only", "dropped")
        self.send_header("Content-Type", "application/x-app")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):
        self._answer(True)

    def do_HEAD(self):
        self._answer(False)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer(True)

    def log_message(self, *args):
        pass


def config(files, upstream_port, port, head=""):
    return f"""{head}
events {{ }}
http {{
    access_log off;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://127.0.0.1:{upstream_port}; }}
        location /protected/ {{
            internal;
            alias {files}/;
        }}
        location @fallback {{ return 200 "named $request_method\\n"; }}
        location /intercepted/ {{
            proxy_pass http://127.0.0.1:{upstream_port};
            proxy_intercept_errors on;
            error_page 404 /protected/report.txt;
        }}
        location /ignoring/ {{
            proxy_pass http://127.0.0.1:{upstream_port}/download/;
            proxy_ignore_headers X-Accel-Redirect;
        }}
        location /not-intercepted/ {{
            proxy_pass http://127.0.0.1:{upstream_port};
            error_page 404 /protected/report.txt;
        }}
    }}
}}
"""


def answer(port, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        headers = {name: response.getheader(name) for name in
                   ["Content-Type", "Content-Disposition", "Set-Cookie", "X-App-Only", "X-Accel-Redirect"]}
        return response.status, headers, response.read()
    finally:
        connection.close()


def test_the_app_hands_a_protected_file_to_the_front_as_nginx_does(gantry, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    (files / "report.txt").write_text("the protected report\n")
    app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    nginx_port, gantry_port = free_port(), free_port()
    requests = [("GET", path, None) for path in REDIRECTS] + [
        ("HEAD", "/download/report.txt", None),
        ("POST", "/download/report.txt", b"form=1"),
        ("POST", "/download/named", b"form=1"),
        ("GET", "/protected/report.txt", None),
        ("GET", "/plain", None),
        ("GET", "/intercepted/missing", None),
        ("GET", "/intercepted/boom", None),
        ("GET", "/intercepted/fine", None),
        ("GET", "/not-intercepted/missing", None),
        ("GET", "/ignoring/report.txt", None),
    ]
    try:
        with side_by_side(gantry, tmp_path, lambda port, head: config(files, app.server_address[1], port, head),
                          nginx_port, gantry_port):
            differences = []
            for method, path, body in requests:
                expected = answer(nginx_port, method, path, body)
                got = answer(gantry_port, method, path, body)
                if b"<hr><center>nginx/" in expected[2]:
                    expected, got = expected[:2], got[:2]  # built-in pages name the server
                if expected != got:
                    differences.append(f"{method} {path}: nginx {expected}, gantry {got}")
            assert not differences, "\n".join(differences)
            # What the comparison rests on.
            status, headers, body = answer(gantry_port, "GET", "/download/report.txt")
            assert (status, body) == (200, b"the protected report\n")
            assert headers["Content-Disposition"] == 'attachment; filename="report.txt"'
            assert headers["Set-Cookie"] == "downloaded=1" and headers["X-App-Only"] is None
            assert answer(gantry_port, "GET", "/protected/report.txt")[0] == 404
            status, _, body = answer(gantry_port, "GET", "/intercepted/missing")
            assert (status, body) == (404, b"the protected report\n")  # the error_page, not the app's body
            assert answer(gantry_port, "GET", "/intercepted/boom")[2] == b"the app's own body, never shown"
            assert answer(gantry_port, "GET", "/not-intercepted/missing")[:3:2] == (404, b"the app's own body, never shown")
            # proxy_ignore_headers X-Accel-Redirect: the app's answer as it is.
            assert answer(gantry_port, "GET", "/ignoring/report.txt")[2] == b"the app's own body, never shown"
    finally:
        app.shutdown()
