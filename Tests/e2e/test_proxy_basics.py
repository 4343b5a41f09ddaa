"""Reverse proxy basics with real upstreams over real TCP and Unix sockets: the headers each
side receives, proxy_pass forms and URI rules, proxy_redirect, 502/504/413 where nginx gives them."""
import json

import pytest

from upstreams.harness import Gantry, Upstream, free_port, header, wait_for


@pytest.fixture
def unix_upstream(tmp_path):
    upstream = Upstream("u", unix_path=str(tmp_path / "app.sock")).start()
    yield upstream
    upstream.kill()


@pytest.fixture
def tcp_upstream():
    upstream = Upstream("t", tcp_port=free_port()).start()
    yield upstream
    upstream.kill()


def run_gantry(gantry, tmp_path, body):
    port = free_port()
    return Gantry(gantry, body.replace("PORT", str(port)), port, tmp_path).start()


def test_seed_block_headers_over_unix_socket(gantry, tmp_path, unix_upstream):
    # The seed's block, unchanged except for the upstream address.
    front = run_gantry(gantry, tmp_path, f"""
    server {{
        listen 127.0.0.1:PORT;
        server_name example.com;
        location / {{
            proxy_pass http://unix:{unix_upstream.unix_path}:;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
        }}
    }}""")
    try:
        payload, response_headers = front.get_json("/hello/world?x=1", headers={
            "Host": "example.com", "User-Agent": "pytest", "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "1", "Keep-Alive": "300", "X-Custom": "kept"})
        # What the upstream received.
        assert payload["path"] == "/hello/world?x=1"
        assert payload["version"] == "HTTP/1.0"           # nginx's default proxy_http_version
        assert header(payload, "Host") == ["example.com"]
        assert header(payload, "X-Real-IP") == ["127.0.0.1"]
        assert header(payload, "Connection") == ["close"]  # nginx's default without keepalive
        assert header(payload, "X-Custom") == ["kept"]
        assert header(payload, "User-Agent") == ["pytest"]
        assert header(payload, "Keep-Alive") == [] and header(payload, "X-Drop-Me") == []
        # What the client received: the upstream's headers minus hop-by-hop and hidden ones.
        assert response_headers["x-upstream"] == "u"
        assert "x-accel-buffering" not in response_headers
        assert response_headers["server"].startswith("gantry")
        assert response_headers["content-type"] == "application/json"
    finally:
        front.stop()


def test_defaults_uri_replacement_and_forwarded_for(gantry, tmp_path, tcp_upstream):
    front = run_gantry(gantry, tmp_path, f"""
    server {{
        listen 127.0.0.1:PORT;
        location /one/ {{
            proxy_pass http://127.0.0.1:{tcp_upstream.port}/two/;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Empty "";
        }}
        location /plain/ {{
            proxy_pass http://127.0.0.1:{tcp_upstream.port};
        }}
    }}""")
    try:
        payload, _ = front.get_json("/one/a%20b/c?q=1", headers={"X-Forwarded-For": "10.9.9.9", "X-Empty": "x"})
        assert payload["path"] == "/two/a%20b/c?q=1"
        assert header(payload, "Host") == [f"127.0.0.1:{tcp_upstream.port}"]  # $proxy_host
        assert header(payload, "X-Forwarded-For") == ["10.9.9.9, 127.0.0.1"]
        assert header(payload, "X-Empty") == []
        payload, _ = front.get_json("/plain/%7Euser?z")
        assert payload["path"] == "/plain/%7Euser?z"              # sent as the client sent it
    finally:
        front.stop()


def test_proxy_redirect_default_and_hidden_headers(gantry, tmp_path, tcp_upstream):
    up = f"127.0.0.1:{tcp_upstream.port}"
    front = run_gantry(gantry, tmp_path, f"""
    server {{
        listen 127.0.0.1:PORT;
        location /one/ {{
            proxy_pass http://{up}/;
            proxy_hide_header X-Upstream;
        }}
    }}""")
    try:
        status, headers, _ = front.request("GET", f"/one/redirect?to=http://{up}/next")
        assert status == 302
        assert headers["location"].endswith("/one/next")
        assert "x-upstream" not in headers
    finally:
        front.stop()


def test_request_and_response_bodies(gantry, tmp_path, tcp_upstream):
    front = run_gantry(gantry, tmp_path, f"""
    server {{
        listen 127.0.0.1:PORT;
        client_max_body_size 1m;
        location / {{ proxy_pass http://127.0.0.1:{tcp_upstream.port}; }}
        location /small/ {{
            client_max_body_size 10k;
            proxy_pass http://127.0.0.1:{tcp_upstream.port}/upload;
        }}
    }}""")
    try:
        status, _, data = front.request("POST", "/upload", body=b"x" * 100_000)
        assert status == 200 and json.loads(data)["received"] == 100_000
        # A chunked body is streamed (as HTTP/1.1 chunked).
        conn = front.connection()
        conn.putrequest("POST", "/upload")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for _ in range(10):
            conn.send(b"1000\r\n" + b"y" * 4096 + b"\r\n")
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["received"] == 40960
        conn.close()
        status, _, data = front.request("GET", "/chunked?bytes=300000")
        assert status == 200 and len(data) == 300000
        # Over client_max_body_size: 413 from the head alone (the body is never sent here,
        # so the answer is not lost to a reset while the client is still sending).
        conn = front.connection()
        conn.putrequest("POST", "/upload")
        conn.putheader("Content-Length", str(2 << 20))
        conn.endheaders()
        assert conn.getresponse().status == 413
        conn.close()
        # A chunked body has no length up front: the proxy counts it as it streams.
        conn = front.connection()
        conn.putrequest("POST", "/small/")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        conn.send(b"2000\r\n" + b"z" * 8192 + b"\r\n" + b"2000\r\n" + b"z" * 8192 + b"\r\n")
        assert conn.getresponse().status == 413
        conn.close()
    finally:
        front.stop()


def test_502_when_nothing_listens_and_504_on_read_timeout(gantry, tmp_path, tcp_upstream):
    dead = free_port()
    front = run_gantry(gantry, tmp_path, f"""
    server {{
        listen 127.0.0.1:PORT;
        location /dead/ {{ proxy_pass http://127.0.0.1:{dead}; }}
        location /deadunix/ {{ proxy_pass http://unix:{tmp_path}/nothing.sock:; }}
        location / {{
            proxy_pass http://127.0.0.1:{tcp_upstream.port};
            proxy_read_timeout 1s;
        }}
    }}""")
    try:
        assert front.request("GET", "/dead/x")[0] == 502
        assert front.request("GET", "/deadunix/x")[0] == 502
        assert front.request("GET", "/hang")[0] == 504
        assert front.request("GET", "/status/503")[0] == 503    # passed through: not in proxy_next_upstream
        # The error log is written asynchronously.
        assert wait_for(lambda: "upstream timed out" in front.error_log(), timeout=5)
        assert wait_for(lambda: "connect() failed" in front.error_log(), timeout=5)
    finally:
        front.stop()


def test_read_timeout_on_a_reused_pooled_connection(gantry, tmp_path, tcp_upstream):
    # The read timer belongs to the upstream connection and is moved, not rescheduled, per request:
    # a request that hangs on a connection earlier requests left in the pool still gets its 504.
    front = run_gantry(gantry, tmp_path, f"""
    upstream app {{
        server 127.0.0.1:{tcp_upstream.port};
        keepalive 4;
    }}
    server {{
        listen 127.0.0.1:PORT;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 1s;
            proxy_next_upstream off;
        }}
    }}""")
    try:
        conn = front.connection()
        for _ in range(5):
            conn.request("GET", "/x")
            response = conn.getresponse()
            assert response.status == 200
            response.read()
        conn.request("GET", "/hang")
        response = conn.getresponse()
        assert response.status == 504
        response.read()
        conn.close()
        # The timed-out connection was closed, not pooled: the next request still gets its answer.
        status, _, body = front.request("GET", "/after")
        assert status == 200 and json.loads(body)["path"] == "/after"
        assert wait_for(lambda: "upstream timed out" in front.error_log(), timeout=5)
    finally:
        front.stop()


def pooled_front(gantry, tmp_path, server):
    """A front whose upstream `app` (one `server`) keeps up to 4 idle connections."""
    return run_gantry(gantry, tmp_path, f"""
    upstream app {{
        server {server};
        keepalive 4;
    }}
    server {{
        listen 127.0.0.1:PORT;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}""")


def test_keepalive_pool_reuses_upstream_connections(gantry, tmp_path, tcp_upstream):
    front = pooled_front(gantry, tmp_path, f"127.0.0.1:{tcp_upstream.port}")
    try:
        before = tcp_upstream.stats()["connections"]
        conn = front.connection()
        for _ in range(30):
            conn.request("GET", "/x")
            response = conn.getresponse()
            assert response.status == 200
            payload = json.loads(response.read())
            assert payload["version"] == "HTTP/1.1" and header(payload, "Connection") == []
        # HEAD has no body: the pooled upstream connection stays in step.
        conn.request("HEAD", "/x")
        response = conn.getresponse()
        assert response.status == 200 and response.read() == b""
        conn.request("GET", "/after-head")
        response = conn.getresponse()
        assert response.status == 200 and json.loads(response.read())["path"] == "/after-head"
        conn.close()
        # One client connection lives on one event loop: its requests share one upstream connection.
        used = tcp_upstream.stats()["connections"] - before - 1
        assert used <= 2, used
    finally:
        front.stop()


def test_pooled_unix_connections_stay_in_step_across_heads_and_bodies(gantry, tmp_path, unix_upstream):
    # A head on a socket the proxy made goes out with its own send(2); after a request with a body
    # the connection's later heads queue behind NIO's writes instead. Either way, in order.
    front = pooled_front(gantry, tmp_path, f"unix:{unix_upstream.unix_path}")
    try:
        before = unix_upstream.stats()["connections"]
        conn = front.connection()
        sequence = [("GET", "/a", None), ("POST", "/upload", b"x" * 300_000), ("GET", "/b", None),
                    ("POST", "/upload", b"y" * 10), ("GET", "/c", None), ("HEAD", "/d", None), ("GET", "/e", None)]
        for method, path, body in sequence * 3:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            payload = response.read()
            assert response.status == 200, (method, path)
            if method == "POST":
                assert json.loads(payload)["received"] == len(body)
            elif method == "GET":
                assert json.loads(payload)["path"] == path
        conn.close()
        assert unix_upstream.stats()["connections"] - before <= 2
    finally:
        front.stop()
