"""A small site and helpers shared by the front's e2e tests (test_front_*.py)."""
import gzip
import http.client
import os
import socket


def build_site(base):
    """Files under base/site; a secret file sits next to the root, to prove nothing leaks."""
    site = base / "site"
    root = site / "root"
    static = site / "static"
    for d in (root / "dir", root / "noindex", root / "gz", root / "zip", root / "cache", root / "tf", static / "sub"):
        d.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text("<h1>home</h1>\n")
    (root / "hello.txt").write_text("hello world\n")
    (root / "style.css").write_text("body { color: red }\n")
    (root / "data.json").write_text('{"a": 1}\n')
    (root / "dir" / "index.html").write_text("dir index\n")
    (root / "noindex" / "a.txt").write_text("a\n")
    (root / "404.html").write_text("custom not found\n")
    (root / ".hidden").write_text("dotfile\n")
    (root / "tf" / "real.txt").write_text("tf real\n")
    (root / "tf" / "d").mkdir(exist_ok=True)
    (root / "tf" / "d" / "index.html").write_text("tf dir index\n")
    (root / "cache" / "c.txt").write_text("cached\n")
    (root / "digits.txt").write_bytes(bytes(range(48, 58)) * 10)  # 100 bytes "0123456789"*10
    (root / "big.bin").write_bytes(os.urandom(200 * 1024))
    text = ("lorem ipsum dolor sit amet " * 200).encode()
    (root / "zip" / "page.txt").write_bytes(text)
    (root / "zip" / "tiny.txt").write_bytes(b"tiny")
    (root / "gz" / "app.js").write_text("console.log('plain');\n")
    (root / "gz" / "app.js.gz").write_bytes(gzip.compress(b"console.log('gzipped');\n"))
    (static / "logo.txt").write_text("logo\n")
    (static / "sub" / "deep.txt").write_text("deep\n")
    secret = site / "secret.txt"
    secret.write_text("TOPSECRET-7f3a9c\n")
    (site / "static.txt").write_text("TOPSECRET-7f3a9c sibling\n")
    return site


def request(endpoint, method="GET", path="/", headers=None, body=None, timeout=10):
    """One request on a fresh connection: (status, headers dict lowercased, body bytes)."""
    if isinstance(endpoint, str):
        conn = UnixHTTPConnection(endpoint, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(endpoint[0], endpoint[1], timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def raw(endpoint, data, timeout=3.0):
    """Sends raw bytes; returns (everything received, whether the server closed the connection)."""
    family = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(endpoint)
        s.sendall(data)
        out = b""
        closed = False
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    closed = True
                    break
                out += chunk
        except socket.timeout:
            pass
        return out, closed
