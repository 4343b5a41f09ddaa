"""An app wrapped in wsgiref.validate.validator (warnings are errors) reports
nothing across every kind of request and response the server handles."""
import pathlib
import socket
import sys
import time

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "apps"))
from wsgi_harness import APPS, Worker  # noqa: E402

PROBLEMS = ("AssertionError", "WSGIWarning", "Exception ignored", "garbage collected")


@pytest.fixture(scope="module")
def worker(gantry):
    with Worker(gantry, "validated:app") as w:
        yield w


def clean(worker):
    log = worker.log
    for problem in PROBLEMS:
        assert problem not in log, log


def test_get_and_head(worker):
    s = requests.Session()
    r = s.get(worker.url("/get?a=1&b=%20"))
    assert r.status_code == 200 and r.text == "GET /get?a=1&b=%20"
    r = s.head(worker.url("/get?a=1"))
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Content-Length"] == str(len("HEAD /get?a=1"))
    r = s.get(worker.url("/get"))
    assert r.text == "GET /get?"
    clean(worker)


def test_post_content_length(worker):
    body = bytes(range(256)) * 1000
    r = requests.post(worker.url("/post"), data=body)
    assert r.status_code == 200 and r.content == body
    clean(worker)


def test_post_chunked(worker):
    def gen():
        yield b"hello "
        yield b"chunked "
        yield b"world" * 1000
    r = requests.post(worker.url("/chunked"), data=gen())
    assert r.status_code == 200
    assert r.text == "got %d hello chunked wo" % (6 + 8 + 5000)
    assert r.headers.get("Transfer-Encoding") == "chunked"
    assert worker.wait_log("CLOSED /chunked after 4 chunks")
    clean(worker)


def test_readline_readlines_and_iteration(worker):
    r = requests.post(worker.url("/lines"), data=b"first line\nsecond\nthird\nfourth")
    assert r.content == b"first line\n|sec|ond\n|third\n|fourth"
    r = requests.post(worker.url("/iterate"), data=b"a\nb\nc")
    assert r.content == b"3:a\nb\nc"
    clean(worker)


def test_write_callable(worker):
    r = requests.get(worker.url("/write"))
    assert r.status_code == 200 and r.text == "written twice and returned"
    clean(worker)


def test_file_wrapper(worker):
    r = requests.get(worker.url("/file"))
    assert r.status_code == 200
    assert r.content == (APPS / "static.txt").read_bytes()
    clean(worker)


def test_generator_response(worker):
    r = requests.get(worker.url("/gen"))
    assert r.status_code == 200 and r.text == "one two three"
    assert worker.wait_log("CLOSED /gen after 4 chunks")
    clean(worker)


def test_exc_info_replaces_headers_before_body(worker):
    r = requests.get(worker.url("/excinfo"))
    assert r.status_code == 500 and r.text == "replaced"
    clean(worker)


def test_exc_info_reraised_after_headers_sent(worker):
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        r = requests.get(worker.url("/excinfo-late"))
        r.content  # noqa: B018 - the connection is cut mid-body
    assert worker.wait_log("too late to replace")
    clean(worker)
    assert requests.get(worker.url("/get")).status_code == 200


def test_client_disconnect_closes_the_iterable(worker):
    with socket.create_connection(("127.0.0.1", worker.port)) as s:
        s.sendall(b"GET /disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(1024).startswith(b"HTTP/1.1 200 OK")
    assert worker.wait_log("CLOSED /disconnect after", timeout=15)
    line = [l for l in worker.log.splitlines() if "CLOSED /disconnect" in l][0]
    assert int(line.split("after ")[1].split()[0]) < 400
    clean(worker)
    assert requests.get(worker.url("/get")).status_code == 200
    assert worker.alive()


def test_expect_100_continue(worker):
    with socket.create_connection(("127.0.0.1", worker.port), timeout=5) as s:
        s.sendall(b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert s.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"hello")
        answer = b""
        while not answer.endswith(b"hello"):
            chunk = s.recv(1024)
            assert chunk
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK")
    clean(worker)


def test_http_1_0(worker):
    with socket.create_connection(("127.0.0.1", worker.port), timeout=5) as s:
        s.sendall(b"GET /gen HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.0 200 OK")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert body == b"one two three"
    with socket.create_connection(("127.0.0.1", worker.port), timeout=5) as s:
        s.sendall(b"GET /get HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = s.recv(65536)
        assert b"Connection: keep-alive" in first and first.endswith(b"GET /get?")
        s.sendall(b"GET /get?again HTTP/1.0\r\n\r\n")
        second = b""
        while chunk := s.recv(65536):
            second += chunk
        assert second.endswith(b"GET /get?again")
    clean(worker)
