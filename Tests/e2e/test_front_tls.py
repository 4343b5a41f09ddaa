"""TLS on the front (`listen … ssl`, `ssl_certificate`): real handshakes with Python's ssl module,
certificates made by the openssl command, static files (sendfile turned into encrypted bytes),
a proxied answer, SNI choosing the certificate, and the errors `gantry -t` gives."""
import hashlib
import http.server
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import free_port


def read_until_close(sock):
    """Everything the server sends until it closes the connection."""
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    return answer

def make_certificate(directory, name, passphrase=None):
    """A self-signed certificate for `name` (its own CA, so a client can trust exactly it)."""
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    command = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
               "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
               "-keyout", str(key), "-out", str(cert)]
    command += ["-passout", f"pass:{passphrase}"] if passphrase else ["-nodes"]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


def client_context(cert):
    context = ssl.create_default_context(cafile=str(cert))
    return context


def https_get(port, path, cert, server_name, extra_headers="", wait_before_reading=0.0):
    """One HTTP/1.1 request over TLS; returns (status line, headers text, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_context(cert).wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\n{extra_headers}Connection: close\r\n\r\n".encode())
            time.sleep(wait_before_reading)
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, _, headers = head.decode("latin-1").partition("\r\n")
    return status, headers, body


@pytest.fixture
def site(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "small.txt").write_text("hello over tls\n")
    big = os.urandom(3 * 1024 * 1024 + 12345)  # several 64 KiB pieces and an odd tail
    (tmp_path / "www" / "big.bin").write_bytes(big)
    return tmp_path, hashlib.sha256(big).hexdigest()


def start_static_tls_site(start_gantry, directory, locations=""):
    """One TLS server for a.test serving directory/www; returns its port and certificate."""
    cert, key = make_certificate(directory, "a.test")
    port = free_port()
    start_gantry(f"""
events {{ }}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name a.test;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {directory}/www;
        {locations}
    }}
}}
""", [("127.0.0.1", port)])
    return port, cert


def test_static_files_and_variables_over_tls(start_gantry, site):
    directory, big_digest = site
    port, cert = start_static_tls_site(start_gantry, directory, """
        location /vars { return 200 "$scheme $https $server_port"; }
        location /dir { return 301 /small.txt; }""")
    status, _, body = https_get(port, "/small.txt", cert, "a.test")
    assert status == "HTTP/1.1 200 OK" and body == b"hello over tls\n"
    # A file bigger than a piece: read off the loop in pieces, encrypted, in order.
    status, headers, body = https_get(port, "/big.bin", cert, "a.test")
    assert status == "HTTP/1.1 200 OK"
    assert hashlib.sha256(body).hexdigest() == big_digest
    # A range of it.
    status, headers, body = https_get(port, "/big.bin", cert, "a.test", "Range: bytes=70000-70009\r\n")
    assert status.startswith("HTTP/1.1 206")
    assert len(body) == 10
    assert https_get(port, "/vars", cert, "a.test")[2] == f"https on {port}".encode()
    # Absolute redirects say https.
    _, headers, _ = https_get(port, "/dir", cert, "a.test")
    assert f"Location: https://a.test:{port}/small.txt" in headers


def test_keep_alive_requests_on_one_tls_connection(start_gantry, site):
    directory, _ = site
    port, cert = start_static_tls_site(start_gantry, directory)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_context(cert).wrap_socket(raw, server_hostname="a.test") as tls:
            reader = tls.makefile("rb")
            for path in ["/small.txt", "/big.bin", "/small.txt"]:
                tls.sendall(f"GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n".encode())
                assert reader.readline().startswith(b"HTTP/1.1 200")
                length = None
                while (line := reader.readline()) != b"\r\n":
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                assert len(reader.read(length)) == length


def test_sni_picks_the_server_and_its_certificate(start_gantry, site):
    directory, _ = site
    cert_a, key_a = make_certificate(directory, "a.test")
    cert_b, key_b = make_certificate(directory, "b.test", passphrase="s3cret")
    (directory / "passwords").write_text("wrong\ns3cret\n")
    port = free_port()
    start_gantry(f"""
events {{ }}
http {{
    access_log off;
    ssl_certificate {cert_a};
    ssl_certificate_key {key_a};
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name a.test;
        location / {{ return 200 "server a"; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name b.test;
        ssl_certificate {cert_b};
        ssl_certificate_key {key_b};
        ssl_password_file passwords;
        location / {{ return 200 "server b"; }}
    }}
}}
""", [("127.0.0.1", port)])
    assert https_get(port, "/", cert_a, "a.test")[2] == b"server a"
    # The client trusts only b's certificate: the handshake passes only if b's is the one sent.
    assert https_get(port, "/", cert_b, "b.test")[2] == b"server b"
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(port, "/", cert_b, "a.test")
    # An unknown name gets the default server's certificate.
    context = ssl.create_default_context(cafile=str(cert_a))
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="other.test") as tls:
            assert tls.getpeercert()["subject"] == ((("commonName", "a.test"),),)


BIG_ANSWER = bytes(range(256)) * 8192 * 12  # 24 MiB: more than the sockets between hold


class _Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = BIG_ANSWER if self.path == "/big" else f"proto={self.headers.get('X-Forwarded-Proto')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_proxied_answer_over_tls_with_the_scheme_forwarded(start_gantry, site):
    directory, _ = site
    cert, key = make_certificate(directory, "a.test")
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port, plain = free_port(), free_port()
    try:
        process = start_gantry(f"""
error_log stderr info;
events {{ }}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port} ssl;
        listen 127.0.0.1:{plain};
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:{upstream.server_address[1]};
            proxy_set_header X-Forwarded-Proto $scheme;
            # A big answer spills to a temp file and is sent from it (a file region, read into
            # bytes for TLS).
            proxy_buffers 2 4k;
            proxy_busy_buffers_size 4k;
            proxy_temp_path {directory}/proxy_temp;
        }}
    }}
}}
""", [("127.0.0.1", port), ("127.0.0.1", plain)])
        assert https_get(port, "/", cert, "a.test")[2] == b"proto=https"
        # The client reads late: the proxy has spooled the answer to its temp file meanwhile.
        assert https_get(port, "/big", cert, "a.test", wait_before_reading=1.0)[2] == BIG_ANSWER
        # Plain HTTP on the TLS port: nginx's 400 page, then the connection closes.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            answer = read_until_close(raw)
            assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
            assert b"The plain HTTP request was sent to HTTPS port" in answer
        # Bytes that are neither TLS nor HTTP: the handshake fails (logged), nothing breaks.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"\x00\x01garbage\r\n\r\n")
            try:
                rest = raw.recv(100)
            except ConnectionResetError:
                rest = b""
            assert not rest.startswith(b"HTTP/")  # at most a TLS alert, then the close
        # The plain listener of the same server still speaks HTTP.
        with socket.create_connection(("127.0.0.1", plain), timeout=10) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            answer = read_until_close(raw)
            assert answer.endswith(b"proto=http")
        assert https_get(port, "/", cert, "a.test")[2] == b"proto=https"
        assert process.proc.poll() is None
        assert "TLS handshake failed" in process.output()
        assert "client sent plain HTTP request to HTTPS port" in process.output()
    finally:
        upstream.shutdown()


def _check(gantry, tmp_path, body):
    (tmp_path / "t.conf").write_text("events { }\nhttp {\n" + body + "\n}\n")
    result = subprocess.run([str(gantry), "-t", "-c", str(tmp_path / "t.conf")], capture_output=True, text=True)
    return result.returncode, result.stderr


def test_config_test_names_tls_mistakes_with_file_and_line(gantry, tmp_path):
    cert, key = make_certificate(tmp_path, "a.test")
    code, err = _check(gantry, tmp_path, "server {\n listen 127.0.0.1:8443 ssl;\n}")
    assert code == 1 and 'no "ssl_certificate" is defined for the "listen ... ssl" directive in ' in err and "t.conf:4" in err
    code, err = _check(gantry, tmp_path, f"server {{\n listen 127.0.0.1:8443 ssl;\n ssl_certificate {tmp_path}/missing.crt;\n ssl_certificate_key {key};\n}}")
    assert code == 1 and f'cannot load certificate "{tmp_path}/missing.crt": No such file or directory' in err and "t.conf:5" in err
    code, err = _check(gantry, tmp_path, f"server {{\n listen 127.0.0.1:8443 ssl;\n ssl_certificate {cert};\n ssl_certificate_key {cert};\n}}")
    assert code == 1 and "cannot load certificate key" in err and "t.conf:6" in err
    code, err = _check(gantry, tmp_path, f"server {{\n listen 127.0.0.1:8443 ssl;\n ssl_certificate {cert};\n ssl_certificate_key {key};\n ssl_verify_client on;\n}}")
    assert code == 1 and '"ssl_verify_client on" is not supported by gantry' in err and "t.conf:7" in err
    code, err = _check(gantry, tmp_path, f"server {{\n listen 127.0.0.1:8443 ssl;\n ssl_certificate {cert};\n ssl_certificate_key {key};\n ssl_protocols SSLv3 TLSv1.2;\n}}")
    assert code == 1 and '"SSLv3" in "ssl_protocols" is not supported by gantry' in err
    # A setting Gantry does not apply is said, not silently dropped.
    code, err = _check(gantry, tmp_path, f"server {{\n listen 127.0.0.1:8443 ssl;\n ssl_certificate {cert};\n ssl_certificate_key {key};\n ssl_session_cache shared:SSL:10m;\n}}")
    assert code == 0, err
    assert '"ssl_session_cache" directive has no effect in gantry' in err and "t.conf:7" in err


def test_a_reload_takes_a_renewed_certificate_and_refuses_a_broken_one(start_gantry, tmp_path):
    old_cert, key = make_certificate(tmp_path, "a.test")
    port = free_port()
    config = f"""
error_log stderr notice;
events {{ }}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {old_cert};
        ssl_certificate_key {key};
        location / {{ return 200 "ok"; }}
    }}
}}
"""
    process = start_gantry(config, [("127.0.0.1", port)])
    assert https_get(port, "/", old_cert, "a.test")[2] == b"ok"
    # certbot's renewal: new files at the same paths, then a reload.
    renewed = tmp_path / "renewed"
    renewed.mkdir()
    new_cert, new_key = make_certificate(renewed, "a.test")
    old_cert.write_bytes(new_cert.read_bytes())
    key.write_bytes(new_key.read_bytes())
    process.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while True:
        try:
            assert https_get(port, "/", new_cert, "a.test")[2] == b"ok"
            break
        except ssl.SSLCertVerificationError:
            assert time.monotonic() < deadline, process.output()
            time.sleep(0.1)
    # A broken key: the reload is refused, the running certificate keeps serving.
    key.write_text("not a key\n")
    process.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "cannot load certificate key" not in process.output():
        assert time.monotonic() < deadline, process.output()
        time.sleep(0.1)
    assert https_get(port, "/", new_cert, "a.test")[2] == b"ok"
    assert process.proc.poll() is None
