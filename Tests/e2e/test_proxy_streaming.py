"""Streaming with backpressure: 1 GiB up and 1 GiB down through the proxy while its peak RSS
grows by less than 32 MiB, and a slow client slows the upstream read instead of filling memory."""
import json
import socket
import time

import pytest

from upstreams.harness import Gantry, Upstream, free_port

GIB = 1 << 30
LIMIT = 32 << 20


@pytest.fixture
def setup(gantry, tmp_path):
    upstream = Upstream("s", unix_path=str(tmp_path / "s.sock")).start()
    front = None
    try:
        port = free_port()
        front = Gantry(gantry, f"""
        server {{
            listen 127.0.0.1:{port};
            client_max_body_size 0;
            location / {{ proxy_pass http://unix:{upstream.unix_path}:; proxy_read_timeout 120s; }}
        }}""", port, tmp_path).start()
        # Warm up (first requests allocate pools, caches, code pages).
        for _ in range(3):
            front.request("GET", "/download?bytes=4000000")
            front.request("POST", "/upload", body=b"w" * 4_000_000)
        yield front
    finally:
        if front:
            front.stop()
        upstream.kill()


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response head"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def test_one_gib_download_and_upload_with_bounded_memory(setup):
    front = setup
    peak_before = front.status_line("VmHWM")

    # 1 GiB down.
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=60)
    sock.sendall(f"GET /download?bytes={GIB} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, rest = read_head(sock)
    assert head.startswith("HTTP/1.1 200") and f"Content-Length: {GIB}" in head
    received = len(rest)
    buffer = bytearray(1 << 20)
    while received < GIB:
        n = sock.recv_into(buffer)
        assert n, f"closed after {received} bytes"
        received += n
    sock.close()
    assert received == GIB

    # 1 GiB up, generated on the fly.
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=60)
    sock.sendall(f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {GIB}\r\nConnection: close\r\n\r\n".encode())
    piece = bytes(range(256)) * 4096
    for _ in range(GIB // len(piece)):
        sock.sendall(piece)
    head, rest = read_head(sock)
    while True:
        more = sock.recv(65536)
        if not more:
            break
        rest += more
    sock.close()
    assert head.startswith("HTTP/1.1 200"), head
    assert json.loads(rest)["received"] == GIB

    growth = front.status_line("VmHWM") - peak_before
    print(f"peak RSS growth: {growth >> 10} KiB")
    assert growth < LIMIT, f"peak RSS grew by {growth >> 20} MiB"


def test_slow_client_slows_the_upstream_not_memory(setup):
    front = setup
    peak_before = front.status_line("VmHWM")
    total = 256 << 20
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    sock.sendall(f"GET /chunked?bytes={total} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, rest = read_head(sock)
    assert head.startswith("HTTP/1.1 200")
    # Stall: the upstream writes as fast as it can; the proxy must stop reading it.
    time.sleep(1.5)
    stalled_growth = front.status_line("VmHWM") - peak_before
    received = len(rest)
    buffer = bytearray(1 << 20)
    while True:
        n = sock.recv_into(buffer)
        if not n:
            break
        received += n
    sock.close()
    print(f"stalled growth: {stalled_growth >> 10} KiB")
    assert received > total    # chunk framing adds a little
    assert stalled_growth < LIMIT, f"grew by {stalled_growth >> 20} MiB while the client stalled"
    assert front.status_line("VmHWM") - peak_before < LIMIT


def test_many_requests_do_not_leak(gantry, tmp_path):
    """Every proxied request's state is freed: thousands of requests leave RSS flat."""
    upstream = Upstream("m", unix_path=str(tmp_path / "m.sock")).start()
    port = free_port()
    front = Gantry(gantry, f"""
    upstream pooled {{ server unix:{upstream.unix_path}; keepalive 4; }}
    server {{
        listen 127.0.0.1:{port};
        location /p/ {{ proxy_pass http://pooled/; proxy_http_version 1.1; proxy_set_header Connection ""; }}
        location / {{ proxy_pass http://unix:{upstream.unix_path}:; }}
    }}""", port, tmp_path).start()
    try:
        def burst(count):
            conn = front.connection()
            for n in range(count):
                conn.request("GET", "/p/x" if n % 2 else "/x")
                response = conn.getresponse()
                response.read()
                assert response.status == 200
            conn.close()

        burst(300)
        before = front.status_line("VmRSS")
        burst(1500)
        growth = front.status_line("VmRSS") - before
        print(f"RSS growth over 1500 requests: {growth >> 10} KiB")
        assert growth < 2 << 20, f"RSS grew by {growth >> 10} KiB over 1500 requests"
    finally:
        front.stop()
        upstream.kill()
