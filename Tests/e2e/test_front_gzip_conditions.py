"""gzip_proxied, gzip_disable, gzip_http_version: the same requests to Gantry and to the real nginx,
the same decision (compressed or not) for each."""
import gzip
import subprocess

import pytest

from conftest import free_port
from front_site import raw
from nginx_oracle import needs_nginx, side_by_side

pytestmark = needs_nginx

LOCATIONS = {
    "default": "",
    "any": "gzip_proxied any;",
    "expired": "gzip_proxied expired; expires epoch;",
    "expired-max": "gzip_proxied expired; expires max;",
    "expired-plain": "gzip_proxied expired;",
    "no-cache": 'gzip_proxied no-cache; add_header Cache-Control "no-cache";',
    "no-store-miss": 'gzip_proxied no-store; add_header Cache-Control "public, max-age=60";',
    "private": 'gzip_proxied private; add_header Cache-Control "private";',
    "no-lm": "gzip_proxied no_last_modified;",
    "no-etag": "gzip_proxied no_etag;",
    "no-etag-off": "gzip_proxied no_etag; etag off;",
    "auth": "gzip_proxied auth;",
    "several": "gzip_proxied auth expired;\n gzip_proxied no-cache;",
    "v10": "gzip_http_version 1.0;",
    "disable": 'gzip_disable "curl/\\d" msie6;',
    "inherit": 'gzip_disable "^wget";',
    "static": "gzip_static on;",
    "static-proxied": "gzip_static on; gzip_proxied any;",
    "static-always": "gzip_static always;",
}

USER_AGENTS = {
    "none": None,
    "curl": "curl/8.5.0",
    "CURL": "CURL/8.5.0",
    "wget": "Wget/1.21",
    "msie6": "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)",
    "msie6-sv1": "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
    "msie5": "Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)",
    "msie7": "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)",
    "opera": "Opera/9.0 (compatible; MSIE 6.0; Windows NT 5.1)",
}

VARIANTS = [
    ("1.1", {}),
    ("1.1", {"Accept-Encoding": "identity"}),
    ("1.1", {"Accept-Encoding": "gzip;q=0"}),
    ("1.1", {"Accept-Encoding": "gzip; q=0.000"}),
    ("1.1", {"Accept-Encoding": "gzip;q=0.5"}),
    ("1.1", {"Accept-Encoding": "deflate, gzip"}),
    ("1.1", {"Accept-Encoding": "GZIP"}),
    ("1.1", {"Accept-Encoding": "x-gzip"}),
    ("1.1", {"Accept-Encoding": "gzip2"}),
    ("1.1", {"Accept-Encoding": "br,gzip ;q=1"}),
    ("1.1", {"Via": "1.1 cdn"}),
    ("1.1", {"Via": "1.1 cdn", "Authorization": "Basic eDp5"}),
    ("1.0", {}),
    ("1.0", {"Via": "1.0 cdn"}),
]


def config(root, port, head=""):
    locations = "\n".join(f"        location /{name}/ {{ {body} }}" for name, body in LOCATIONS.items())
    return f"""{head}
events {{ }}
http {{
    access_log off;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        gzip on;
        gzip_types text/plain;
        gzip_min_length 1;
        gzip_vary on;
        gzip_disable msie6;
{locations}
    }}
}}
"""


def encoding(port, path, version, headers, agent, method="GET"):
    headers = {"Accept-Encoding": "gzip", **headers}
    lines = [f"{method} {path} HTTP/{version}", "Host: localhost", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if agent:
        lines.append(f"User-Agent: {agent}")
    data, _ = raw(("127.0.0.1", port), ("\r\n".join(lines) + "\r\n\r\n").encode(), timeout=5)
    head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    assert head.split(" ", 2)[1] == "200", head
    lowered = head.lower()
    encoding = "gzip" if "\r\ncontent-encoding: gzip" in lowered else "identity"
    # gzip_vary: nginx says Vary whenever the file could be compressed, compressed or not.
    return encoding + (" +vary" if "\r\nvary: accept-encoding" in lowered else "")


@pytest.fixture
def nginx_and_gantry(gantry, tmp_path):
    root = tmp_path / "root"
    for name in LOCATIONS:
        (root / name).mkdir(parents=True)
        (root / name / "page.txt").write_text("compress me, " * 200)
        if name.startswith("static"):
            (root / name / "page.txt.gz").write_bytes(gzip.compress(b"precompressed, " * 200))
    nginx_port, gantry_port = free_port(), free_port()
    with side_by_side(gantry, tmp_path, lambda port, head: config(root, port, head=head), nginx_port, gantry_port):
        yield nginx_port, gantry_port


def test_the_same_requests_get_the_same_compression_decisions_as_nginx(nginx_and_gantry):
    nginx_port, gantry_port = nginx_and_gantry
    differences, compressed = [], 0
    for name in LOCATIONS:
        for version, headers in VARIANTS:
            for label, agent in USER_AGENTS.items():
                path = f"/{name}/page.txt"
                for method in ("GET", "HEAD"):
                    expected = encoding(nginx_port, path, version, headers, agent, method)
                    got = encoding(gantry_port, path, version, headers, agent, method)
                    compressed += expected.startswith("gzip")
                    if expected != got:
                        differences.append(f"{method} {path} HTTP/{version} {headers} UA={label}: nginx {expected}, gantry {got}")
    assert not differences, "\n".join(differences)
    # The matrix exercises both outcomes.
    assert 0 < compressed < 2 * len(LOCATIONS) * len(VARIANTS) * len(USER_AGENTS)


def test_gunicorn_example_nginx_conf_style_passes_t(gantry, tmp_path):
    """gunicorn's examples/nginx.conf: `gzip on; gzip_proxied any; gzip_disable ...` in http {}."""
    (tmp_path / "gantry.conf").write_text("""
worker_processes 1;
user nobody nogroup;
error_log  /tmp/gantry-gzip-example-error.log warn;
pid /tmp/gantry-gzip-example.pid;
events {
  worker_connections 1024;
  accept_mutex off;
}
http {
  include mime.types;
  default_type application/octet-stream;
  access_log /tmp/gantry-gzip-example-access.log combined;
  sendfile on;
  gzip on;
  gzip_http_version 1.0;
  gzip_proxied any;
  gzip_min_length 500;
  gzip_disable "MSIE [1-6]\\.";
  gzip_types text/plain text/xml text/css
             text/comma-separated-values
             text/javascript application/x-javascript
             application/atom+xml;
  upstream app_server {
    server unix:/tmp/gunicorn.sock fail_timeout=0;
  }
  server {
    listen 80 default_server deferred;
    client_max_body_size 4G;
    server_name example.com www.example.com;
    keepalive_timeout 5;
    root /path/to/app/current/public;
    location / {
      try_files $uri @proxy_to_app;
    }
    location @proxy_to_app {
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Host $http_host;
      proxy_redirect off;
      proxy_pass http://app_server;
    }
    error_page 500 502 503 504 /500.html;
    location = /500.html {
      root /path/to/app/current/public;
    }
  }
}
""")
    import shutil
    from conftest import ROOT
    shutil.copy(ROOT / "nginx-compat" / "mime.types", tmp_path / "mime.types")
    result = subprocess.run([str(gantry), "-t", "-c", str(tmp_path / "gantry.conf")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_invalid_values_are_refused_as_nginx_words_them(gantry, tmp_path):
    cases = {
        "gzip_proxied sometimes;": 'invalid value "sometimes"',
        "gzip_http_version 2.0;": 'invalid value "2.0"',
        'gzip_disable "(unclosed";': "gzip_disable",
    }
    for directive, message in cases.items():
        path = tmp_path / "bad.conf"
        path.write_text(f"events {{ }}\nhttp {{\n    {directive}\n    server {{ listen 127.0.0.1:{free_port()}; }}\n}}\n")
        result = subprocess.run([str(gantry), "-t", "-c", str(path)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 1, (directive, result.stderr)
        assert message in result.stderr and "bad.conf:3" in result.stderr, (directive, result.stderr)
