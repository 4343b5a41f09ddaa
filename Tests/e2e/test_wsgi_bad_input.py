"""Bad input — malformed requests and apps that break PEP 3333 — gets a clear
status and a log line, and the worker stays up."""
import pathlib
import socket
import sys

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "apps"))
from wsgi_harness import Worker, raw_request  # noqa: E402


@pytest.fixture(scope="module")
def worker(gantry):
    with Worker(gantry, "bad_apps:app") as w:
        yield w


def still_up(worker):
    assert worker.alive()
    r = requests.get(worker.url("/ok"))
    assert r.status_code == 200 and r.text == "ok"


@pytest.mark.parametrize("path,expected_log", [
    ("/raise", "RuntimeError: the app raised"),
    ("/raise-in-iter", "RuntimeError: raised while iterating"),
    ("/str", "response body items must be bytes, not <class 'str'>"),
    ("/twice", "start_response() called a second time without exc_info"),
    ("/never", "the app sent body data before calling start_response()"),
    ("/none", "the app returned a non-iterable"),
    ("/header-newline", "header X-Evil has a control character in its value"),
    ("/hop-by-hop", "Transfer-Encoding is a hop-by-hop header"),
    ("/bad-status", "invalid status \"OK\""),
    ("/bytes-status", "status must be str"),
])
def test_app_errors_give_500_and_a_log_line(worker, path, expected_log):
    r = requests.get(worker.url(path))
    assert r.status_code == 500
    assert "Internal Server Error" in r.text
    assert "Injected" not in r.headers
    assert worker.wait_log(expected_log), worker.log
    assert f"Error handling request GET {path}" in worker.log
    still_up(worker)


def test_content_length_overflow_is_truncated(worker):
    r = requests.get(worker.url("/cl-more"))
    assert r.status_code == 200 and r.content == b"12345"
    assert worker.wait_log("the app sent more than its Content-Length of 5 bytes")
    still_up(worker)


def test_content_length_shortfall_closes_the_connection(worker):
    answer = raw_request(worker.port, b"GET /cl-less HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"only a few bytes")  # then the server closed: the client sees a short body
    assert worker.wait_log("the app sent 16 of its Content-Length of 100 bytes")
    still_up(worker)


def test_close_raising_is_logged(worker):
    r = requests.get(worker.url("/close-raises"))
    assert r.status_code == 200 and r.text == "body"
    assert worker.wait_log("close() raised")
    still_up(worker)


@pytest.mark.parametrize("request_bytes,status", [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nBad Header Name: x\r\n\r\n", b"400"),
    (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", b"400"),
    (b"GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b"400"),
    (b"GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", b"400"),
    (b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n", b"431"),
])
def test_malformed_requests(worker, request_bytes, status):
    answer = raw_request(worker.port, request_bytes)
    assert answer.split(b" ")[1] == status, answer[:200]
    assert worker.wait_log("bad request from 127.0.0.1")
    still_up(worker)


def test_client_closing_mid_body_does_not_hurt(worker):
    with socket.create_connection(("127.0.0.1", worker.port)) as s:
        s.sendall(b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial")
    still_up(worker)


def test_keep_alive_and_pipelining(worker):
    answer = raw_request(worker.port, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert answer.endswith(b"ok")
