"""A Flask app served by `gantry worker`: routes, JSON bodies, form posts, file
uploads, streamed responses and 404/500 handlers."""
import pathlib
import sys

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "apps"))
from wsgi_harness import Worker  # noqa: E402


@pytest.fixture(scope="module")
def worker(gantry):
    with Worker(gantry, "flask_full:app", "--threads", "2") as w:
        yield w


def test_routes_and_methods(worker):
    s = requests.Session()
    assert s.get(worker.url("/")).text == "<h1>Index</h1>"
    r = s.put(worker.url("/items/7?tag=a&tag=b"))
    assert r.json() == {"id": 7, "method": "PUT", "args": {"tag": ["a", "b"]}}
    assert s.delete(worker.url("/items/8")).json()["method"] == "DELETE"
    assert s.head(worker.url("/")).headers["Content-Length"] == str(len("<h1>Index</h1>"))


def test_json_body(worker):
    payload = {"name": "gantry", "list": [1, 2, 3], "nested": {"ü": "ñ"}}
    r = requests.post(worker.url("/json"), json=payload)
    assert r.status_code == 201
    assert r.json() == {"received": payload, "type": "application/json"}


def test_form_post(worker):
    r = requests.post(worker.url("/form"), data={"a": "1", "b": ["x", "y"], "c": "with space & amp"})
    assert r.json() == {"form": {"a": ["1"], "b": ["x", "y"], "c": ["with space & amp"]}}


def test_file_upload(worker):
    big = bytes(range(256)) * 4096  # 1 MiB, more than the body buffer's high-water mark
    r = requests.post(worker.url("/upload"), files={"doc": ("report.pdf", big, "application/pdf"),
                                                    "note": ("n.txt", b"hello", "text/plain")},
                      data={"title": "upload test"})
    assert r.status_code == 200
    assert r.json() == {"files": {"doc": {"filename": "report.pdf", "size": len(big), "type": "application/pdf"},
                                  "note": {"filename": "n.txt", "size": 5, "type": "text/plain"}},
                        "fields": {"title": "upload test"}}


def test_streamed_response(worker):
    with requests.get(worker.url("/stream"), stream=True) as r:
        assert r.headers["Transfer-Encoding"] == "chunked"
        lines = list(r.iter_lines())
    assert lines == [b"chunk %d" % i for i in range(5)]


def test_404_and_500_handlers(worker):
    r = requests.get(worker.url("/missing/page"))
    assert r.status_code == 404 and r.json() == {"error": "not found", "path": "/missing/page"}
    r = requests.get(worker.url("/crash"))
    assert r.status_code == 500 and r.json() == {"error": "server error"}
    assert worker.wait_log("RuntimeError: view crashed")
    assert worker.alive()


def test_headers_cookies_and_proxy_info(worker):
    r = requests.get(worker.url("/headers"), headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"})
    assert r.headers["X-Custom"] == "yes"
    assert "session=abc" in r.headers["Set-Cookie"]
    data = r.json()
    assert data["remote"] == "203.0.113.5" and data["scheme"] == "https"
    assert data["url"].startswith("https://127.0.0.1:")
