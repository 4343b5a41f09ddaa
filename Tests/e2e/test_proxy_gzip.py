"""On-the-fly gzip of proxied answers: the same requests through the real nginx and through Gantry,
both proxying to one upstream, get the same decision (compressed or not), and a compressed body
unpacks to the upstream's bytes."""
import gzip
import http.client

import pytest

from conftest import free_port
from nginx_oracle import needs_nginx, side_by_side
from upstreams.harness import Upstream

pytestmark = needs_nginx

LOCATIONS = {
    "plain": "",
    "via-off": "",                          # gzip_proxied off (default): a request with Via is not compressed
    "via-any": "gzip_proxied any;",
    "long": "gzip_min_length 100000;",      # JSON answers are shorter (Content-Length known)
    "types": "gzip_types text/plain;",      # application/json no longer listed
}

# (path on the upstream, request headers)
REQUESTS = [
    ("/json", {}),
    ("/json", {"Via": "1.1 cdn"}),
    ("/download?bytes=200000", {}),          # application/octet-stream, Content-Length
    ("/chunked?bytes=200000", {}),           # no Content-Length: min_length cannot apply
    ("/status/404", {}),
    ("/status/500", {}),                     # nginx compresses only 200, 403, 404
    ("/json", {"Accept-Encoding": "identity"}),   # not compressed, yet Vary: Accept-Encoding
]


def config(upstream_sock, port, head=""):
    locations = "\n".join(
        f"        location /{name}/ {{ proxy_pass http://unix:{upstream_sock}:/; {body} }}"
        for name, body in LOCATIONS.items())
    return f"""{head}
events {{ }}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        gzip on;
        gzip_types application/json application/octet-stream;
        gzip_min_length 20;
        gzip_vary on;
{locations}
    }}
}}
"""


def fetch(port, path, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        sent = {"Accept-Encoding": "gzip"}
        sent.update(headers)
        conn.request("GET", path, headers=sent)
        response = conn.getresponse()
        body = response.read()
        encoding = response.getheader("Content-Encoding") or "identity"
        if encoding == "gzip":
            assert response.getheader("Content-Length") is None or int(response.getheader("Content-Length")) == len(body)
            body = gzip.decompress(body)
        return response.status, encoding + " vary=" + (response.getheader("Vary") or "-"), body
    finally:
        conn.close()


@pytest.fixture
def nginx_and_gantry(gantry, tmp_path):
    upstream = Upstream("u", unix_path=str(tmp_path / "u.sock")).start()
    nginx_port, gantry_port = free_port(), free_port()
    try:
        with side_by_side(gantry, tmp_path, lambda port, head: config(upstream.unix_path, port, head=head),
                          nginx_port, gantry_port):
            yield nginx_port, gantry_port
    finally:
        upstream.kill()


def normalised(body):
    # The upstream's JSON echoes the request headers it got (each proxy sends its own set).
    return body.split(b'"headers"')[0]


def test_proxied_answers_are_compressed_as_nginx_compresses_them(nginx_and_gantry):
    nginx_port, gantry_port = nginx_and_gantry
    differences, compressed = [], 0
    for name in LOCATIONS:
        for path, headers in REQUESTS:
            if name != "via-off" and name != "via-any" and "Via" in headers:
                continue
            url = f"/{name}{path}"
            n_status, n_encoding, n_body = fetch(nginx_port, url, headers)
            g_status, g_encoding, g_body = fetch(gantry_port, url, headers)
            compressed += n_encoding.startswith("gzip")
            if (n_status, n_encoding) != (g_status, g_encoding):
                differences.append(f"{url} {headers}: nginx {n_status} {n_encoding}, gantry {g_status} {g_encoding}")
            elif normalised(n_body) != normalised(g_body):
                differences.append(f"{url} {headers}: bodies differ after unpacking")
    assert not differences, "\n".join(differences)
    assert compressed >= 4  # the matrix exercises both outcomes
