"""allow / deny (ngx_http_access_module): the same clients (127.0.0.1, 127.0.0.2, ::1, a Unix
socket) asking the same paths of Gantry and of the real nginx get the same status."""
import socket
import subprocess
import time

import pytest

from conftest import free_port
from nginx_oracle import NGINX, needs_nginx, side_by_side

pytestmark = needs_nginx

LOCATIONS = {
    "open": "",
    "deny-all": "deny all;",
    "allow-one": "allow 127.0.0.1; deny all;",
    "allow-net": "allow 127.0.0.0/8; deny all;",
    "deny-net": "deny 127.0.0.0/30; allow all;",
    "first-match": "allow 127.0.0.1; deny 127.0.0.1; deny all;",
    "no-match": "deny 10.0.0.0/8; deny 2001:db8::/32;",
    "v6": "allow ::1; deny all;",
    "v6-net": "allow ::/64; deny all;",
    "unix": "allow unix:; deny all;",
    "not-unix": "deny unix:;",
    "override": "allow all;",
    "host-bits": "allow 127.0.0.5/8; deny all;",
    "return": 'deny all; return 200 "returned\\n";',
    "proxied": "deny 127.0.0.2; proxy_pass http://127.0.0.1:9;",
    "nested": "deny 127.0.0.1; location /nested/inner/ { } location /nested/own/ { allow all; }",
}
PATHS = [f"/{name}/page.txt" for name in LOCATIONS] + ["/nested/inner/page.txt", "/nested/own/page.txt", "/server-level.txt"]


def config(root, port, unix_path, head=""):
    locations = "\n".join(f"        location /{name}/ {{ {body} }}" for name, body in LOCATIONS.items())
    return f"""{head}
events {{ }}
http {{
    access_log off;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        listen unix:{unix_path};
        root {root};
        # Inherited by locations with no allow/deny of their own.
        allow 127.0.0.1;
        allow ::1;
        allow unix:;
        deny all;
{locations}
    }}
}}
"""


def status(endpoint, path, source=None):
    if isinstance(endpoint, str):
        sock = socket.socket(socket.AF_UNIX)
        target = endpoint
    else:
        host, port = endpoint
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        target = (host, port)
    with sock:
        sock.settimeout(10)
        if source:
            sock.bind((source, 0))  # the client's address as the server sees it
        sock.connect(target)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.fixture
def nginx_and_gantry(gantry, tmp_path):
    root = tmp_path / "root"
    for path in PATHS:
        (root / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / path.lstrip("/")).write_text("page\n")
    nginx_port, gantry_port = free_port(), free_port()
    nginx_unix, gantry_unix = str(tmp_path / "nginx.sock"), str(tmp_path / "gantry.sock")
    error_log = tmp_path / "gantry-error.log"

    def configured(port, head):
        return config(root, port, nginx_unix if port == nginx_port else gantry_unix, head=head)

    with side_by_side(gantry, tmp_path, configured, nginx_port, gantry_port, gantry_head=f"error_log {error_log} info;"):
        yield (nginx_port, nginx_unix), (gantry_port, gantry_unix), error_log


def test_every_client_gets_nginxs_status_for_every_path(nginx_and_gantry):
    (nginx_port, nginx_unix), (gantry_port, gantry_unix), error_log = nginx_and_gantry
    clients = {
        "127.0.0.1": (lambda port, unix: ("127.0.0.1", port), None),
        "127.0.0.2": (lambda port, unix: ("127.0.0.1", port), "127.0.0.2"),
        "::1": (lambda port, unix: ("::1", port), None),
        "unix": (lambda port, unix: unix, None),
    }
    differences, seen = [], set()
    for path in PATHS:
        for name, (endpoint, source) in clients.items():
            expected = status(endpoint(nginx_port, nginx_unix), path, source)
            got = status(endpoint(gantry_port, gantry_unix), path, source)
            seen.add(expected)
            if expected != got:
                differences.append(f"{path} from {name}: nginx {expected}, gantry {got}")
    assert not differences, "\n".join(differences)
    assert {200, 403, 502} <= seen
    # The log line (written by the front's log thread within 100 ms).
    deadline = time.monotonic() + 5
    while "access forbidden by rule, client: 127.0.0.2" not in error_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "access forbidden by rule, client: 127.0.0.2" in error_log.read_text()


def test_bad_rules_are_refused_or_warned_as_nginx(gantry, tmp_path):
    for value, message in {"300.1.1.1": 'invalid parameter "300.1.1.1"', "10.0.0.0/33": 'invalid parameter "10.0.0.0/33"',
                           "somewhere": 'invalid parameter "somewhere"'}.items():
        path = tmp_path / "bad.conf"
        path.write_text(f"events {{ }}\nhttp {{\n    server {{\n        deny {value};\n    }}\n}}\n")
        result = subprocess.run([str(gantry), "-t", "-c", str(path)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 1 and message in result.stderr and "bad.conf:4" in result.stderr, result.stderr
        nginx = subprocess.run([NGINX, "-t", "-p", f"{tmp_path}/", "-c", str(path), "-e", "stderr"], capture_output=True, text=True, timeout=30)
        assert nginx.returncode == 1 and message in nginx.stderr, nginx.stderr
    path = tmp_path / "bits.conf"
    path.write_text("events { }\nhttp {\n    server {\n        allow 10.1.2.3/8;\n    }\n}\n")
    result = subprocess.run([str(gantry), "-t", "-c", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "low address bits of 10.1.2.3/8 are meaningless" in result.stderr
