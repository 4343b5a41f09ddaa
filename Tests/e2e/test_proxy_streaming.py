"""Streaming with backpressure: 1 GiB up and 1 GiB down through the proxy while its peak RSS
grows by less than 32 MiB. With `proxy_buffering off` a slow client slows the upstream read
instead of filling memory; with `proxy_buffering on` (the default) the response goes to a temp
file, so the upstream is free at once; `proxy_request_buffering on` stores a body whole first."""
import json
import os
import socket
import time

import pytest

from upstreams.harness import Gantry, Upstream, free_port, header, wait_for

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
            location /unbuffered/ {{
                proxy_pass http://unix:{upstream.unix_path}:/;
                proxy_buffering off;
                proxy_request_buffering off;
                proxy_read_timeout 120s;
            }}
        }}""", port, tmp_path).start()
        front.upstream = upstream
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


def read_to_close(sock, rest):
    """`rest` and everything after it until the server closes; closes the socket."""
    while True:
        more = sock.recv(65536)
        if not more:
            break
        rest += more
    sock.close()
    return rest


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
    rest = read_to_close(sock, rest)
    assert head.startswith("HTTP/1.1 200"), head
    assert json.loads(rest)["received"] == GIB

    growth = front.status_line("VmHWM") - peak_before
    print(f"peak RSS growth: {growth >> 10} KiB")
    assert growth < LIMIT, f"peak RSS grew by {growth >> 20} MiB"


def test_slow_client_slows_the_upstream_not_memory(setup):
    front = setup
    peak_before = front.status_line("VmHWM")
    total = 256 << 20
    done_before = front.upstream.stats()["downloads_done"]
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    sock.sendall(f"GET /unbuffered/chunked?bytes={total} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, rest = read_head(sock)
    assert head.startswith("HTTP/1.1 200")
    # Stall: the upstream writes as fast as it can; the proxy must stop reading it.
    time.sleep(1.5)
    stalled_growth = front.status_line("VmHWM") - peak_before
    assert front.upstream.stats()["downloads_done"] == done_before, "the upstream was not slowed down"
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


PATTERN = bytes(range(256)) * 8192  # 2 MiB of the upstream's byte pattern


def receive_pattern(sock, rest, total):
    """Reads the rest of a `total`-byte /download body and checks every byte against the pattern."""
    received = 0
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    data = rest
    while True:
        if data:
            assert data == PATTERN[received % 256: received % 256 + len(data)], f"wrong bytes at {received}"
            received += len(data)
        if received >= total:
            break
        n = sock.recv_into(buffer)
        assert n, f"closed after {received} bytes"
        data = bytes(view[:n])
    return received


def temp_files(front):
    """The deleted temp files gantry has open (the spool's files are unlinked at once)."""
    names = []
    for fd in os.listdir(f"/proc/{front.process.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{front.process.pid}/fd/{fd}")
        except OSError:
            continue
        if "proxy_temp" in target or "client_body_temp" in target:
            names.append(target)
    return names


def test_buffering_frees_the_upstream_while_the_client_stalls(setup):
    """proxy_buffering on: a stalled client's response goes to a temp file, the upstream is done at
    once (an app worker is not held by a slow client), memory stays flat, and every byte arrives."""
    front = setup
    total = 96 << 20
    peak_before = front.status_line("VmHWM")
    done_before = front.upstream.stats()["downloads_done"]
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=60)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    sock.sendall(f"GET /download?bytes={total} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    head, rest = read_head(sock)
    assert head.startswith("HTTP/1.1 200") and f"Content-Length: {total}" in head
    # The client reads nothing more: the upstream still finishes its answer.
    assert wait_for(lambda: front.upstream.stats()["downloads_done"] == done_before + 1, timeout=30), \
        "the upstream was held by the stalled client"
    spooled = temp_files(front)
    assert spooled and all("(deleted)" in name for name in spooled), spooled
    assert front.status_line("VmHWM") - peak_before < LIMIT
    assert receive_pattern(sock, rest, total) == total
    sock.close()
    assert wait_for(lambda: not temp_files(front), timeout=5), "the temp file was not closed"


def test_request_buffering_stores_the_body_then_sends_it_with_a_length(setup):
    """proxy_request_buffering on: a chunked body past client_body_buffer_size is read whole (into a
    temp file) before the upstream sees the request, then sent with Content-Length, as nginx does."""
    front = setup
    requests_before = front.upstream.stats()["requests"]
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=30)
    sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    piece = b"z" * (1 << 20)
    for _ in range(5):
        sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
    time.sleep(0.5)
    # Half-way: nothing reached the upstream yet.
    assert front.upstream.stats()["requests"] == requests_before
    assert temp_files(front), "the body is not in a temp file"
    for _ in range(3):
        sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
    sock.sendall(b"0\r\n\r\n")
    head, rest = read_head(sock)
    rest = read_to_close(sock, rest)
    assert head.startswith("HTTP/1.1 200"), head
    payload = json.loads(rest)
    assert payload["received"] == 8 << 20
    assert header(payload, "Content-Length") == [str(8 << 20)]
    assert header(payload, "Transfer-Encoding") == []


@pytest.mark.parametrize("size", [100_000, 140_000, 300_000])
def test_a_buffered_body_leaves_the_keepalive_connection_in_step(setup, size):
    """A body stored in a temp file pauses the client while the file lags behind; when its last
    bytes came during such a pause, the next request on the connection used to be never read."""
    front = setup
    conn = front.connection()
    for _ in range(2):
        conn.request("POST", "/upload", body=b"b" * size)
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["received"] == size
        conn.request("GET", "/after")
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["path"] == "/after"
    conn.close()


def test_unbuffered_request_streams_to_the_upstream(setup):
    """proxy_request_buffering off: the upstream gets the request while the body is still coming."""
    front = setup
    requests_before = front.upstream.stats()["requests"]
    sock = socket.create_connection(("127.0.0.1", front.port), timeout=30)
    sock.sendall(b"POST /unbuffered/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n")
    sock.sendall(b"y" * 1_000_000)
    assert wait_for(lambda: front.upstream.stats()["requests"] == requests_before + 1, timeout=10)
    sock.sendall(b"y" * 1_000_000)
    head, rest = read_head(sock)
    rest = read_to_close(sock, rest)
    assert head.startswith("HTTP/1.1 200"), head
    assert json.loads(rest)["received"] == 2_000_000


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
