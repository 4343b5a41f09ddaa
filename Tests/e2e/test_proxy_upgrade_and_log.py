"""WebSocket passthrough the nginx way, and the $upstream_* variables in the access log."""
import socket

import pytest

from upstreams.harness import Gantry, Upstream, free_port, wait_for


@pytest.fixture
def upstreams(tmp_path):
    started = []
    yield lambda *names: started.extend(Upstream(n, tcp_port=free_port()).start() for n in names) or started
    for upstream in started:
        upstream.kill()


def read_until(sock, marker):
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed; got {data!r}"
        data += chunk
    return data


def test_websocket_upgrade_is_passed_through(gantry, tmp_path, upstreams):
    (ws,) = upstreams("w")
    port = free_port()
    front = Gantry(gantry, f"""
    server {{
        listen 127.0.0.1:{port};
        location /ws {{
            proxy_pass http://127.0.0.1:{ws.port};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 5s;
        }}
        location / {{ proxy_pass http://127.0.0.1:{ws.port}; }}
    }}""", port, tmp_path).start()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        head = read_until(sock, b"\r\n\r\n").decode("latin-1")
        assert head.startswith("HTTP/1.1 101"), head
        assert "upgrade: websocket" in head.lower()
        for message in (b"hello", b"second message", b"x" * 100_000):
            sock.sendall(message)
            echoed = b""
            while len(echoed) < len(message):
                chunk = sock.recv(65536)
                assert chunk
                echoed += chunk
            assert echoed == message.upper()
        sock.close()
        # Without the two proxy_set_header lines nginx does not pass Upgrade: a plain answer.
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /wsx HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        assert read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        sock.close()
    finally:
        front.stop()


def test_upstream_variables_in_access_log(gantry, tmp_path, upstreams):
    a, b = upstreams("a", "b")
    port = free_port()
    log = tmp_path / "logs" / "proxy.log"
    front = Gantry(gantry, f"""
    log_format up '$request_uri $status [$upstream_addr] [$upstream_status] [$upstream_response_time] [$upstream_http_x_upstream] [$upstream_http_content_type] [$upstream_http_x_missing]';
    upstream app {{ server 127.0.0.1:{a.port}; server 127.0.0.1:{b.port}; }}
    server {{
        listen 127.0.0.1:{port};
        access_log {log} up;
        location / {{ proxy_pass http://app; }}
    }}""", port, tmp_path).start()
    try:
        assert front.request("GET", "/one")[0] == 200
        a.kill()
        for _ in range(2):
            assert front.request("GET", "/two")[0] == 200
        assert wait_for(lambda: log.exists() and log.read_text().count("\n") >= 3, timeout=5)
        lines = log.read_text().splitlines()
        assert lines[0].startswith(f"/one 200 [127.0.0.1:{a.port}] [200] [0.")
        # $upstream_http_NAME: the answering server's response headers; unset ones log as "-", as in nginx.
        assert lines[0].endswith("] [a] [application/json] [-]"), lines[0]
        # One of the two requests after the kill tried a first (refused: 502) and then b.
        retried = [l for l in lines[1:] if "," in l]
        assert retried and retried[0].startswith(
            f"/two 200 [127.0.0.1:{a.port}, 127.0.0.1:{b.port}] [502, 200] [")
        assert retried[0].endswith("] [b] [application/json] [-]"), retried[0]
    finally:
        front.stop()


def test_upstream_http_variables_in_access_log(gantry, tmp_path, upstreams):
    (a,) = upstreams("a")
    port = free_port()
    log = tmp_path / "logs" / "headers.log"
    front = Gantry(gantry, f"""
    log_format hdr '$request_uri [$upstream_http_x_upstream] [$upstream_http_content_type] [$upstream_http_x_none]';
    server {{
        listen 127.0.0.1:{port};
        access_log {log} hdr;
        location / {{ proxy_pass http://127.0.0.1:{a.port}; }}
    }}""", port, tmp_path).start()
    try:
        assert front.request("GET", "/h")[0] == 200
        assert wait_for(lambda: log.exists() and log.read_text().count("\n") >= 1, timeout=5)
        # As nginx: the upstream's response header; an absent one is logged as "-".
        assert log.read_text().splitlines()[0] == "/h [a] [application/json] [-]"
    finally:
        front.stop()
