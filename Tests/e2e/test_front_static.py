"""The front serving static files as nginx does: routing, files, conditionals, ranges, headers."""
import gzip
import http.client
import re
import socket
import time

import pytest

from conftest import GantryProcess, free_port
from front_site import build_site, raw, request


CONFIG = """
worker_processes 2;
events {{ worker_connections 256; }}
http {{
    include mime.types;
    default_type application/octet-stream;
    log_format short '$request_method $uri $status $body_bytes_sent a=$arg_x h=$http_x_test';
    access_log {logs}/access.log short;
    log_format vars '[$time_local] [$time_iso8601] t=$request_time rp=$remote_port sp=$server_port $scheme $server_name $host "$request" $request_uri $args';
    access_log {logs}/vars.log vars;
    keepalive_requests 5;

    server {{
        listen 127.0.0.1:{port};
        listen unix:{sock};
        listen [::1]:{port6};
        server_name localhost;
        root {site}/root;
        error_page 404 /404.html;

        location /static {{ alias {site}/static/; }}
        location /files/ {{ alias {site}/static/; }}
        location ~ ^/img/(.+)$ {{ alias {site}/static/$1; }}
        location = /exact {{ return 200 "exact $uri $arg_a"; }}
        location /ret {{ return 301 /dir/; }}
        location /redirect-url {{ return https://example.com/x?$args; }}
        location /drop {{ return 444; }}
        location /tf/ {{ try_files $uri $uri/ /hello.txt; }}
        location /tfcode {{ try_files /nothing =418; }}
        location /tfnamed {{ try_files /nothing @named; }}
        location @named {{ return 200 "named $uri"; }}
        location /cache/ {{ expires 1h; add_header X-Cache hit; add_header X-Always yes always; }}
        location /always {{ add_header X-Never no; add_header X-Always yes always; return 403; }}
        location /gz/ {{ gzip_static on; gzip_vary on; }}
        location /zip/ {{ gzip on; gzip_types text/plain; gzip_vary on; }}
        location ^~ /stop/ {{ return 200 "stop"; }}
        location ~ \\.stp$ {{ return 200 "regex"; }}
        location /nested/ {{
            location ~ \\.txt$ {{ return 200 "nested-regex"; }}
            return 200 "nested-prefix";
        }}
        location ~* \\.case$ {{ return 200 "icase"; }}
        location /err500 {{ error_page 500 =200 @named; return 500; }}
        location /teapot {{ error_page 418 =302 http://example.com/tea; return 418; }}
        location /noerr {{ error_page 404 =404 /hello.txt; }}
    }}
    server {{ listen 127.0.0.1:{port}; server_name *.example.com; return 200 "wild $host"; }}
    server {{ listen 127.0.0.1:{port}; server_name www.example.*; return 200 "trailing"; }}
    server {{ listen 127.0.0.1:{port}; server_name ~^(?<sub>[a-z]+)\\.regex\\.test$; return 200 "regex $sub"; }}
    server {{ listen 127.0.0.1:{port}; server_name exact.example.com; return 200 "exact-name"; }}
    server {{ listen 127.0.0.1:{port2}; server_name first2; return 200 "first2"; }}
    server {{ listen 127.0.0.1:{port2} default_server; server_name other; return 200 "default2"; }}
}}
"""


@pytest.fixture(scope="module")
def front(gantry, tmp_path_factory):
    base = tmp_path_factory.mktemp("front")
    site = build_site(base)
    (base / "logs").mkdir()
    port, port2, port6 = free_port(), free_port(), free_port()
    sock = str(base / "front.sock")
    config = base / "gantry.conf"
    config.write_text(CONFIG.format(port=port, port2=port2, port6=port6, sock=sock, site=site, logs=base / "logs"))
    process = GantryProcess(gantry, config, [("127.0.0.1", port), ("127.0.0.1", port2), sock], cwd=base)
    process.port, process.port2, process.port6, process.sock, process.site, process.base = port, port2, port6, sock, site, base
    process.addr = ("127.0.0.1", port)
    yield process
    process.stop()


def get(front, path, method="GET", headers=None):
    return request(front.addr, method, path, headers)


# --- Listening ------------------------------------------------------------------------------------

def test_serves_over_ipv4_ipv6_and_unix(front):
    assert get(front, "/hello.txt")[2] == b"hello world\n"
    assert request(front.sock, "GET", "/hello.txt")[2] == b"hello world\n"
    try:
        status, _, body = request(("::1", front.port6), "GET", "/hello.txt")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    assert (status, body) == (200, b"hello world\n")


def test_date_and_server_headers(front):
    status, headers, _ = get(front, "/hello.txt")
    assert status == 200
    assert headers["server"].startswith("gantry")
    assert re.match(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", headers["date"])


# --- Routing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("host,expected", [
    ("localhost", b"<h1>home</h1>\n"),
    ("a.example.com", b"wild a.example.com"),
    ("www.example.org", b"trailing"),
    ("abc.regex.test", b"regex abc"),
    ("exact.example.com", b"exact-name"),
    ("EXACT.Example.com:8080", b"exact-name"),
    ("unknown.test", b"<h1>home</h1>\n"),  # first server is the default
])
def test_server_selection_by_host(front, host, expected):
    assert get(front, "/", headers={"Host": host})[2] == expected


def test_default_server_flag_wins_over_first(front):
    assert request(("127.0.0.1", front.port2), "GET", "/", {"Host": "nobody"})[2] == b"default2"
    assert request(("127.0.0.1", front.port2), "GET", "/", {"Host": "first2"})[2] == b"first2"


@pytest.mark.parametrize("path,expected", [
    ("/exact?a=1", b"exact /exact 1"),
    ("/stop/x.stp", b"stop"),          # ^~ stops the regex search
    ("/other/x.stp", b"regex"),        # regex beats a prefix match
    ("/nested/a.txt", b"nested-regex"),
    ("/nested/a.bin", b"nested-prefix"),
    ("/X.CASE", b"icase"),
    ("/tfnamed", b"named /tfnamed"),
])
def test_location_selection(front, path, expected):
    status, _, body = get(front, path)
    assert (status, body) == (200, expected)


def test_uri_normalisation(front):
    assert get(front, "//dir//./index.html")[2] == b"dir index\n"
    assert get(front, "/dir/../hello.txt")[2] == b"hello world\n"
    assert get(front, "/%68ello.txt")[2] == b"hello world\n"
    assert get(front, "/../hello.txt")[0] == 400


# --- Files -----------------------------------------------------------------------------------------

def test_root_index_and_mime_types(front):
    status, headers, body = get(front, "/")
    assert (status, headers["content-type"], body) == (200, "text/html", b"<h1>home</h1>\n")
    assert get(front, "/style.css")[1]["content-type"] == "text/css"
    assert get(front, "/data.json")[1]["content-type"] == "application/json"
    assert get(front, "/big.bin")[1]["content-type"] == "application/octet-stream"


def test_large_file_is_complete(front):
    status, headers, body = get(front, "/big.bin")
    assert status == 200 and len(body) == 200 * 1024
    assert body == (front.site / "root" / "big.bin").read_bytes()


def test_directory_without_slash_redirects(front):
    status, headers, _ = get(front, "/dir?x=1")
    assert status == 301
    assert headers["location"] == f"http://127.0.0.1:{front.port}/dir/?x=1"


def test_directory_without_index_is_forbidden(front):
    assert get(front, "/noindex/")[0] == 403


def test_missing_file_uses_error_page(front):
    status, headers, body = get(front, "/nope.html")
    assert (status, body) == (404, b"custom not found\n")


def test_dotfiles_are_served_as_nginx_does(front):
    assert get(front, "/.hidden")[2] == b"dotfile\n"


def test_alias_prefix_and_regex(front):
    assert get(front, "/static/logo.txt")[2] == b"logo\n"
    assert get(front, "/files/sub/deep.txt")[2] == b"deep\n"
    assert get(front, "/img/sub/deep.txt")[2] == b"deep\n"


def test_head_has_headers_and_no_body(front):
    status, headers, body = get(front, "/hello.txt", method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == "12"


def test_methods_other_than_get_head_are_not_allowed(front):
    assert get(front, "/hello.txt", method="DELETE")[0] == 405
    assert request(front.addr, "POST", "/hello.txt", body=b"x")[0] == 405


# --- try_files, return, error_page ------------------------------------------------------------------

def test_try_files(front):
    assert get(front, "/tf/real.txt")[2] == b"tf real\n"
    assert get(front, "/tf/missing")[2] == b"hello world\n"
    assert get(front, "/tf/d")[2] == b"tf dir index\n"      # $uri/ names the directory, then index
    assert get(front, "/tfcode")[0] == 418


def test_return_forms(front):
    status, headers, _ = get(front, "/ret")
    assert status == 301 and headers["location"] == f"http://127.0.0.1:{front.port}/dir/"
    status, headers, _ = get(front, "/redirect-url?q=1")
    assert status == 302 and headers["location"] == "https://example.com/x?q=1"


def test_return_444_closes_without_answer(front):
    out, closed = raw(front.addr, b"GET /drop HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert out == b"" and closed


def test_error_page_rewrites_status(front):
    assert get(front, "/err500") == (200, get(front, "/err500")[1], b"named /err500")
    status, headers, _ = get(front, "/teapot")
    assert status == 302 and headers["location"] == "http://example.com/tea"


# --- Caching headers, conditionals, ranges ---------------------------------------------------------

def test_etag_last_modified_and_304(front):
    status, headers, _ = get(front, "/hello.txt")
    etag, modified = headers["etag"], headers["last-modified"]
    assert get(front, "/hello.txt", headers={"If-None-Match": etag})[0] == 304
    assert get(front, "/hello.txt", headers={"If-Modified-Since": modified})[0] == 304
    assert get(front, "/hello.txt", headers={"If-None-Match": '"other"'})[0] == 200


def test_if_match_and_if_unmodified_since_give_412(front):
    assert get(front, "/hello.txt", headers={"If-Match": '"nope"'})[0] == 412
    assert get(front, "/hello.txt", headers={"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:01 GMT"})[0] == 412
    etag = get(front, "/hello.txt")[1]["etag"]
    assert get(front, "/hello.txt", headers={"If-Match": etag})[0] == 200


def test_single_range(front):
    status, headers, body = get(front, "/digits.txt", headers={"Range": "bytes=2-5"})
    assert (status, body, headers["content-range"]) == (206, b"2345", "bytes 2-5/100")
    status, _, body = get(front, "/digits.txt", headers={"Range": "bytes=-3"})
    assert (status, body) == (206, b"789")


def test_multiple_ranges_are_multipart(front):
    status, headers, body = get(front, "/digits.txt", headers={"Range": "bytes=0-1,10-11"})
    assert status == 206
    assert headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert b"Content-Range: bytes 0-1/100\r\n\r\n01" in body
    assert b"Content-Range: bytes 10-11/100\r\n\r\n01" in body
    assert int(headers["content-length"]) == len(body)


def test_unsatisfiable_range(front):
    status, headers, _ = get(front, "/digits.txt", headers={"Range": "bytes=500-"})
    assert status == 416 and headers["content-range"] == "bytes */100"


def test_if_range(front):
    etag = get(front, "/digits.txt")[1]["etag"]
    assert get(front, "/digits.txt", headers={"Range": "bytes=0-0", "If-Range": etag})[0] == 206
    assert get(front, "/digits.txt", headers={"Range": "bytes=0-0", "If-Range": '"stale"'})[0] == 200


def test_expires_and_add_header(front):
    status, headers, _ = get(front, "/cache/c.txt")
    assert headers["cache-control"] == "max-age=3600"
    assert "expires" in headers
    assert headers["x-cache"] == "hit" and headers["x-always"] == "yes"
    status, headers, _ = get(front, "/always")
    assert status == 403
    assert "x-never" not in headers and headers["x-always"] == "yes"


def test_gzip_static(front):
    status, headers, body = get(front, "/gz/app.js", headers={"Accept-Encoding": "gzip"})
    assert headers.get("content-encoding") == "gzip" and headers.get("vary") == "Accept-Encoding"
    assert gzip.decompress(body) == b"console.log('gzipped');\n"
    status, headers, body = get(front, "/gz/app.js")
    assert "content-encoding" not in headers and body == b"console.log('plain');\n"


def test_gzip_on_the_fly(front):
    original = (front.site / "root" / "zip" / "page.txt").read_bytes()
    status, headers, body = get(front, "/zip/page.txt", headers={"Accept-Encoding": "gzip, deflate"})
    assert headers.get("content-encoding") == "gzip" and headers.get("vary") == "Accept-Encoding"
    assert gzip.decompress(body) == original and len(body) < len(original)
    status, headers, body = get(front, "/zip/page.txt")
    assert "content-encoding" not in headers and body == original
    status, headers, body = get(front, "/zip/tiny.txt", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in headers  # shorter than gzip_min_length


# --- Connections -----------------------------------------------------------------------------------

def test_keepalive_and_pipelining(front):
    pipelined = b"".join(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n" for _ in range(3))
    out, closed = raw(front.addr, pipelined, timeout=1.0)
    assert out.count(b"HTTP/1.1 200 OK") == 3 and out.count(b"hello world\n") == 3
    assert not closed


def test_keepalive_requests_limit_closes(front):
    pipelined = b"".join(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n" for _ in range(6))
    out, closed = raw(front.addr, pipelined, timeout=3.0)
    assert out.count(b"HTTP/1.1 200 OK") == 5 and out.count(b"Connection: close") == 1 and closed


def test_http10_closes_unless_keepalive(front):
    out, closed = raw(front.addr, b"GET /hello.txt HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in out and closed
    out, closed = raw(front.addr, b"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", timeout=1.0)
    assert b"Connection: keep-alive" in out and not closed


def test_log_variables(front):
    get(front, "/hello.txt?v=1", headers={"Host": "LocalHost"})
    log = front.base / "logs" / "vars.log"
    pattern = (r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] \[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\] "
               r"t=\d+\.\d{3} rp=\d+ sp=%d http localhost localhost \"GET /hello.txt\?v=1 HTTP/1.1\" /hello.txt\?v=1 v=1" % front.port)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not re.search(pattern, log.read_text()):
        time.sleep(0.1)
    assert re.search(pattern, log.read_text()), log.read_text()


def test_access_log_lines(front):
    get(front, "/hello.txt?x=42", headers={"X-Test": "yes"})
    log = front.base / "logs" / "access.log"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if "GET /hello.txt 200 12 a=42 h=yes" in log.read_text():
            break
        time.sleep(0.1)
    assert "GET /hello.txt 200 12 a=42 h=yes" in log.read_text()
