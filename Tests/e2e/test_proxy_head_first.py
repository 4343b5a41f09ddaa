"""The proxy may hold a response head to send it with the first body bytes of the same read,
but never waits for later ones: a stream whose first event is far off shows its head at once."""
import socket
import threading

from upstreams.harness import Gantry, free_port, wait_for


def read_request_head(conn):
    """Reads up to the end of a request head; False when the peer closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    return True


def serve_once(listener, release):
    conn, _ = listener.accept()
    with conn:
        if not read_request_head(conn):
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        release.wait(10)
        conn.sendall(b"6\r\nhello\n\r\n0\r\n\r\n")


def test_head_is_sent_before_a_late_first_body_part(gantry, tmp_path):
    path = str(tmp_path / "late.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    release = threading.Event()
    server = threading.Thread(target=serve_once, args=(listener, release), daemon=True)
    server.start()
    port = free_port()
    front = Gantry(gantry, f"""
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://unix:{path}:; }}
    }}""", port, tmp_path).start()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        # The upstream holds its body until released: the head must arrive without it.
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the response head"
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        assert head.startswith("HTTP/1.1 200")
        assert "Content-Type: text/event-stream" in head
        release.set()
        while not data.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        assert b"hello\n" in data
        sock.close()
    finally:
        release.set()
        front.stop()
        listener.close()
        server.join(5)


def serve_raw(listener, response, count):
    for _ in range(count):
        conn, _ = listener.accept()
        with conn:
            read_request_head(conn)
            conn.sendall(response)


import pytest  # noqa: E402


@pytest.mark.parametrize("response, logged", [
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 5000 + b"\r\nContent-Length: 2\r\n\r\nok",
     "upstream sent too big header while reading response header from upstream"),
    (b"HTTP/1.1 200 OK\r\n Folded: value\r\nContent-Length: 2\r\n\r\nok",
     "upstream sent invalid header while reading response header from upstream"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok",
     "upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "upstream sent no valid HTTP/1.0 header"),
], ids=["too-big", "obs-fold", "length-and-chunked", "not-http"])
def test_malformed_upstream_heads_are_502_as_nginx(gantry, tmp_path, response, logged):
    path = str(tmp_path / "bad.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    server = threading.Thread(target=serve_raw, args=(listener, response, 1), daemon=True)
    server.start()
    port = free_port()
    front = Gantry(gantry, f"""
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://unix:{path}:; }}
    }}""", port, tmp_path).start()
    try:
        status, _, _ = front.request("GET", "/")
        assert status == 502, front.error_log()[-2000:]
        # The log is written off the event loop: wait for the line.
        assert wait_for(lambda: logged in front.error_log(), timeout=5), front.error_log()[-2000:]
    finally:
        front.stop()
        listener.close()
        server.join(5)
