"""Front directives that need their own server: timeouts, limits, tokens, start-up errors, shutdown."""
import signal
import socket
import subprocess
import threading
import time

from conftest import free_port
from front_site import build_site, raw, request


def server_config(site, port, server_extra="", http_extra=""):
    return f"""
events {{}}
http {{
    access_log off;
    {http_extra}
    server {{
        listen 127.0.0.1:{port};
        root {site}/root;
        {server_extra}
    }}
}}
"""


def test_keepalive_timeout_closes_idle_connection(start_gantry, tmp_path):
    site, port = build_site(tmp_path), free_port()
    start_gantry(server_config(site, port, "keepalive_timeout 1s 7;"), [("127.0.0.1", port)])
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(5)
        s.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        first = s.recv(65536)
        assert b"Keep-Alive: timeout=7" in first
        start = time.monotonic()
        assert s.recv(65536) == b""  # closed by the server
        assert 0.5 < time.monotonic() - start < 4


def test_etag_off_max_ranges_and_if_modified_since_before(start_gantry, tmp_path):
    site, port = build_site(tmp_path), free_port()
    start_gantry(server_config(site, port, "etag off; max_ranges 1; if_modified_since before;"), [("127.0.0.1", port)])
    addr = ("127.0.0.1", port)
    status, headers, _ = request(addr, "GET", "/digits.txt")
    assert "etag" not in headers
    assert request(addr, "GET", "/digits.txt", {"Range": "bytes=0-1,5-6"})[0] == 200
    assert request(addr, "GET", "/digits.txt", {"Range": "bytes=0-1"})[0] == 206
    assert request(addr, "GET", "/digits.txt", {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})[0] == 304


def test_client_max_body_size_gives_413(start_gantry, tmp_path):
    site, port = build_site(tmp_path), free_port()
    start_gantry(server_config(site, port, "client_max_body_size 10;"), [("127.0.0.1", port)])
    out, closed = raw(("127.0.0.1", port), b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n" + b"x" * 20)
    assert out.startswith(b"HTTP/1.1 413 Request Entity Too Large") and closed


def test_server_tokens_off(start_gantry, tmp_path):
    site, port = build_site(tmp_path), free_port()
    start_gantry(server_config(site, port, "server_tokens off;"), [("127.0.0.1", port)])
    status, headers, body = request(("127.0.0.1", port), "GET", "/missing")
    assert headers["server"] == "gantry" and b"<center>gantry</center>" in body


def test_unknown_variable_refuses_to_start(gantry, tmp_path):
    site, port = build_site(tmp_path), free_port()
    conf = tmp_path / "bad.conf"
    conf.write_text(server_config(site, port, "location / { return 200 $nosuch; }"))
    r = subprocess.run([gantry, "-c", conf], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert f'unknown "nosuch" variable in {conf}:9' in r.stderr


def test_error_log_in_location_is_refused(gantry, tmp_path):
    site, port = build_site(tmp_path), free_port()
    conf = tmp_path / "bad.conf"
    conf.write_text(server_config(site, port, f"location / {{ error_log {tmp_path}/e.log; }}"))
    r = subprocess.run([gantry, "-c", conf], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1 and "is not supported by gantry" in r.stderr


def test_sigquit_finishes_in_flight_response(start_gantry, tmp_path):
    site, port = build_site(tmp_path), free_port()
    (site / "root" / "large.bin").write_bytes(b"z" * (16 * 1024 * 1024))
    process = start_gantry(server_config(site, port), [("127.0.0.1", port)])
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(10)
    s.sendall(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    received = s.recv(65536)  # the response has started; most of it is still to come
    process.proc.send_signal(signal.SIGQUIT)
    time.sleep(0.3)
    # No new connections once stopping.
    refused = False
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        refused = True
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        received += chunk
    s.close()
    body = received.split(b"\r\n\r\n", 1)[1]
    assert len(body) == 16 * 1024 * 1024
    assert refused
    assert process.proc.wait(timeout=15) == 0


def test_unix_socket_is_removed_on_exit(start_gantry, tmp_path):
    site, sock = build_site(tmp_path), str(tmp_path / "front.sock")
    config = f"events {{}}\nhttp {{ access_log off; server {{ listen unix:{sock}; root {site}/root; }} }}\n"
    process = start_gantry(config, [sock])
    assert request(sock, "GET", "/hello.txt")[2] == b"hello world\n"
    assert process.stop() == 0
    assert not (tmp_path / "front.sock").exists()


def test_changed_file_is_served_fresh_within_seconds(start_gantry, tmp_path):
    """The open-file cache answers from a stale entry for at most about a second, then refreshes."""
    site, port = build_site(tmp_path), free_port()
    start_gantry(server_config(site, port), [("127.0.0.1", port)])
    addr = ("127.0.0.1", port)
    assert request(addr, "GET", "/hello.txt")[2] == b"hello world\n"
    new = site / "root" / "hello.new"
    new.write_text("changed!\n")
    new.rename(site / "root" / "hello.txt")
    deadline = time.monotonic() + 10
    body = b""
    while time.monotonic() < deadline:
        body = request(addr, "GET", "/hello.txt")[2]
        if body == b"changed!\n":
            break
        time.sleep(0.2)
    assert body == b"changed!\n"


def test_header_names_as_nginx_reads_them(start_gantry, tmp_path):
    site, port, port2 = build_site(tmp_path), free_port(), free_port()
    config = f"""
events {{}}
http {{
    access_log off;
    server {{ listen 127.0.0.1:{port}; location / {{ return 200 "[$http_x_foo][$http_x_bar] $uri"; }} }}
    server {{
        listen 127.0.0.1:{port2};
        underscores_in_headers on; ignore_invalid_headers off; merge_slashes off;
        location / {{ return 200 "[$http_x_foo][$http_x_bar] $uri"; }}
    }}
}}
"""
    start_gantry(config, [("127.0.0.1", port), ("127.0.0.1", port2)])
    request_bytes = b"GET /a//b HTTP/1.1\r\nHost: x\r\nX_Foo: a\r\nX-Bar: b\r\nConnection: close\r\n\r\n"
    out, _ = raw(("127.0.0.1", port), request_bytes)
    assert out.endswith(b"[][b] /a/b")            # underscores ignored, slashes merged (nginx defaults)
    out, _ = raw(("127.0.0.1", port2), request_bytes)
    assert out.endswith(b"[a][b] /a//b")
    out, closed = raw(("127.0.0.1", port2), b"GET / HTTP/1.1\r\nHost: x\r\nX.Y: 1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400") and closed


def test_send_timeout_closes_a_client_that_stops_reading(start_gantry, tmp_path):
    site, port = build_site(tmp_path), free_port()
    size = 32 * 1024 * 1024
    (site / "root" / "large.bin").write_bytes(b"z" * size)
    start_gantry(server_config(site, port, "send_timeout 1s;"), [("127.0.0.1", port)])
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /large.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(3)  # not reading: the server's writes stall for longer than send_timeout
    received = 0
    s.settimeout(10)
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    assert received < size
