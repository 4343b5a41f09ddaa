"""Malformed requests get nginx's status and connection state (checked against nginx 1.22), a log line, no crash."""
import socket
import time

import pytest

from conftest import GantryProcess, free_port
from front_site import build_site, raw

CONFIG = """
error_log {base}/error.log info;
events {{}}
http {{
    access_log off;
    large_client_header_buffers 4 8k;
    client_header_timeout 2s;
    server {{
        listen 127.0.0.1:{port};
        root {site}/root;
    }}
}}
"""


@pytest.fixture(scope="module")
def front(gantry, tmp_path_factory):
    base = tmp_path_factory.mktemp("bad")
    site = build_site(base)
    port = free_port()
    config = base / "gantry.conf"
    config.write_text(CONFIG.format(port=port, site=site, base=base))
    process = GantryProcess(gantry, config, [("127.0.0.1", port)], cwd=base)
    process.addr = ("127.0.0.1", port)
    process.base = base
    yield process
    process.stop()


# (request bytes, nginx's status line, whether nginx closes the connection)
CASES = {
    "garbage line": (b"GARBAGE\r\n\r\n", b"400 Bad Request", True),
    "lowercase method": (b"get / HTTP/1.1\r\nHost: x\r\n\r\n", b"400 Bad Request", True),
    "unknown method": (b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", b"405 Not Allowed", False),
    "HTTP/2.0 line": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", b"505 HTTP Version Not Supported", True),
    "no Host in 1.1": (b"GET / HTTP/1.1\r\n\r\n", b"400 Bad Request", True),
    "header without colon": (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", b"400 Bad Request", True),
    "space before colon": (b"GET / HTTP/1.1\r\nHost: x\r\nFoo : 1\r\n\r\n", b"400 Bad Request", True),
    "invalid header name is ignored": (b"GET / HTTP/1.1\r\nHost: x\r\nBa(d: 1\r\n\r\n", b"200 OK", False),
    "obsolete line folding": (b"GET / HTTP/1.1\r\nHost: x\r\nFoo: 1\r\n  bar\r\n\r\n", b"400 Bad Request", True),
    "Content-Length with Transfer-Encoding": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"400 Bad Request", True),
    "unknown Transfer-Encoding": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", b"501 Not Implemented", True),
    "Transfer-Encoding in 1.0": (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"400 Bad Request", True),
    "bad Content-Length": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b"400 Bad Request", True),
    "duplicate Content-Length": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nab", b"400 Bad Request", True),
    "duplicate Host": (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", b"400 Bad Request", True),
    "invalid Host": (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", b"400 Bad Request", True),
    "request line too long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414 Request-URI Too Large", True),
    "header line too long": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", b"400 Bad Request", True),
    "headers too large": (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"a" * 4000) for i in range(12)) + b"\r\n",
                          b"400 Bad Request", True),
    "NUL in URI": (b"GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n", b"400 Bad Request", True),
    "control byte in URI": (b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", b"400 Bad Request", True),
    "bad percent escape": (b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", b"400 Bad Request", True),
    "asterisk target": (b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", b"400 Bad Request", True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_request_matches_nginx(front, name):
    data, status, closes = CASES[name]
    out, closed = raw(front.addr, data, timeout=1.0)
    assert out.startswith(b"HTTP/1.1 " + status), out[:200]
    assert closed == closes
    assert (b"Connection: close" in out) == closes


def test_errors_are_logged_and_server_survives(front):
    for data, _, _ in CASES.values():
        raw(front.addr, data, timeout=0.5)
    out, _ = raw(front.addr, b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"hello world\n")
    log = front.base / "error.log"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "client sent too long URI" not in log.read_text():
        time.sleep(0.1)
    text = log.read_text()
    assert "client sent too long URI" in text
    assert "client sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time" in text


def test_header_timeout_closes_a_silent_connection(front):
    start = time.monotonic()
    out, closed = raw(front.addr, b"GET / HTTP/1.1\r\nHost: x\r\n", timeout=6.0)
    assert closed and out == b""
    assert time.monotonic() - start < 5.5


def half_closed(front, data, timeout=5.0):
    """Sends `data`, shuts down the sending side, and reads until the server closes."""
    with socket.create_connection(front.addr, timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_half_closed_client_gets_pipelined_answers_then_close(front):
    request = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
    out = half_closed(front, request * 2)
    assert out.count(b"HTTP/1.1 200 OK") == 2 and out.endswith(b"hello world\n")


def test_body_that_can_never_arrive_does_not_hold_the_connection(front):
    out = half_closed(front, b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten!!")
    assert out.startswith(b"HTTP/1.1 405")


def test_partial_head_then_half_close_is_closed(front):
    assert half_closed(front, b"GET /hello.txt HTTP/1.1\r\nHost") == b""
