"""No request may read a byte outside the configured root or alias (issue item 6).

A secret file with unique content sits next to the root; every traversal form is sent raw
and the test fails if the secret's marker appears in any answer."""
import os

import pytest

from conftest import GantryProcess, free_port
from front_site import build_site, raw

MARKER = b"TOPSECRET-7f3a9c"

CONFIG = """
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        root {site}/root;
        location /static {{ alias {site}/static/; }}
        location /st {{ alias {site}/static; }}
        location ~ ^/pics(.*)$ {{ alias {site}/static/$1; }}
        location /follow/ {{ disable_symlinks off; }}
        location /strict/ {{ disable_symlinks on; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def front(gantry, tmp_path_factory):
    base = tmp_path_factory.mktemp("safety")
    site = build_site(base)
    root = site / "root"
    os.symlink(site / "secret.txt", root / "escape.txt")          # leaves the root
    os.symlink(root / "hello.txt", root / "inside.txt")           # stays inside
    (root / "follow").mkdir()
    os.symlink(site / "secret.txt", root / "follow" / "allowed.txt")
    (root / "strict").mkdir()
    os.symlink(root / "hello.txt", root / "strict" / "link.txt")
    port = free_port()
    config = base / "gantry.conf"
    config.write_text(CONFIG.format(port=port, site=site))
    process = GantryProcess(gantry, config, [("127.0.0.1", port)], cwd=base)
    process.addr = ("127.0.0.1", port)
    yield process
    process.stop()


TRAVERSALS = [
    b"/../secret.txt",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/secret.txt",
    b"/.%2e/secret.txt",
    b"/%2e%2e%2fsecret.txt",
    b"/..%2fsecret.txt",
    b"/..%5csecret.txt",
    b"/..\\secret.txt",
    b"/static/..\\..\\secret.txt",
    b"/static/..%2f..%2fsecret.txt",
    b"/static/%2e%2e/secret.txt",
    b"/static../secret.txt",           # nginx's alias trap
    b"/static..%2fsecret.txt",
    b"/static%2e%2e/secret.txt",
    b"/st.txt",                        # alias without slash: the sibling file static.txt
    b"/st/../secret.txt",
    b"/pics../secret.txt",             # regex alias with a capture that climbs
    b"/pics/../../secret.txt",
    b"/pics%2f..%2f..%2fsecret.txt",
    b"/secret.txt%00.html",
    b"/%00/../secret.txt",
    b"/%c0%ae%c0%ae/secret.txt",       # overlong UTF-8 '.'
    b"/%c0%ae%c0%ae%c0%afsecret.txt",
    b"/%e0%80%ae%e0%80%ae/secret.txt",
    b"/%252e%252e/secret.txt",         # double encoding
    b"/./../secret.txt",
    b"//../secret.txt",
    b"/dir/../../secret.txt",
    b"/static/sub/../../../secret.txt",
    b"http://localhost/../secret.txt",
    b"/escape.txt",                    # symlink leaving the root
    b"/strict/link.txt",               # disable_symlinks on: no links at all
]


@pytest.mark.parametrize("target", TRAVERSALS, ids=lambda t: t.decode("latin-1"))
def test_traversal_never_returns_outside_bytes(front, target):
    out, _ = raw(front.addr, b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 "), out[:100]
    assert MARKER not in out
    assert not out.startswith(b"HTTP/1.1 200")


def test_symlink_inside_root_is_served(front):
    out, _ = raw(front.addr, b"GET /inside.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"hello world\n")


def test_disable_symlinks_off_allows_links_out(front):
    out, _ = raw(front.addr, b"GET /follow/allowed.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and MARKER in out


def test_alias_still_serves_inside(front):
    out, _ = raw(front.addr, b"GET /static/logo.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"logo\n")
    out, _ = raw(front.addr, b"GET /pics/sub/deep.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"deep\n")
