"""`gantry serve`: the development server reloads on code change, survives a
broken edit, and bounds request bodies."""
import pathlib
import sys
import time

import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "apps"))
from wsgi_harness import Worker, raw_request  # noqa: E402

APP = """
def app(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'%s']
"""


def wait_for_text(url, text, timeout=20):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = requests.get(url, timeout=2).text
            if last == text:
                return True
        except requests.exceptions.RequestException as error:
            last = error
        time.sleep(0.1)
    raise AssertionError(f"never got {text!r}; last answer {last!r}")


def test_reload_on_change_and_recovery_from_a_broken_edit(gantry, tmp_path):
    source = tmp_path / "devapp.py"
    source.write_text(APP % "version one")
    with Worker(gantry, "devapp:app", "--reload-interval", "0.2", command="serve", chdir=tmp_path) as w:
        wait_for_text(w.url("/"), "version one")
        time.sleep(1.1)  # a coarse mtime clock must see the edit as a change
        source.write_text(APP % "version two")
        wait_for_text(w.url("/"), "version two")
        assert "devapp.py changed; reloading" in w.log

        time.sleep(1.1)
        source.write_text("def app(environ, start_response:\n")  # a syntax error
        assert w.wait_log("waiting for a file change", timeout=20)
        assert "SyntaxError" in w.log
        assert w.alive()

        time.sleep(1.1)
        source.write_text(APP % "version three")
        wait_for_text(w.url("/"), "version three")


def test_bodies_are_bounded(gantry):
    with Worker(gantry, "validated:app", "--no-reload", command="serve") as w:
        wait_for_text(w.url("/get"), "GET /get?")
        # Only the head is sent: the answer must not depend on the client racing the close.
        answer = raw_request(w.port, b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (11 * 1024 * 1024))
        assert answer.startswith(b"HTTP/1.1 413 ")
        r = requests.post(w.url("/post"), data=b"x" * 1000)
        assert r.status_code == 200 and len(r.content) == 1000
