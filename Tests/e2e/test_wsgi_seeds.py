"""Every example app of the seed articles answers as its article says, under
`gantry wsgi` (2 workers), a lone `gantry worker`, and `gantry serve`."""
import sys
import pathlib

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "apps"))
from wsgi_harness import Worker  # noqa: E402


def check_dynamic(r):
    assert r.status_code == 200
    assert "<h1>Hello, Tom!</h1>" in r.text
    assert "<p>Request Method: GET</p>" in r.text
    assert "<p>User Agent: seed-test/1.0</p>" in r.text
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"


def check_dynamic_root(r):
    assert "<h1>Hello, World!</h1>" in r.text


def check_minimal(r):
    assert r.status_code == 200 and r.text == "<h1>Hi from Raw WSGI!</h1>"


def check_hello(r):
    assert r.status_code == 200 and r.text == "Hello World!\n"
    assert r.headers["Content-Type"] == "text/plain"


def check_environment(r):
    assert r.status_code == 200
    lines = r.text.split("\n")
    assert lines == sorted(lines)
    assert "QUERY_STRING: age=10&hobbies=software&hobbies=tunning" in lines
    assert "REQUEST_METHOD: GET" in lines
    assert "PATH_INFO: /" in lines
    assert int(r.headers["Content-Length"]) == len(r.content)


def check_get_form(r):
    assert r.status_code == 200
    assert "Age: 10<br>" in r.text
    assert "Hobbies: software, tunning" in r.text
    assert 'value="software" checked' in r.text


def check_get_escaped(r):
    assert "Age: &lt;script&gt;<br>" in r.text and "<script>" not in r.text.replace('<script>"', "")


def check_post_form(r):
    assert r.status_code == 200
    assert "Age: 42<br>" in r.text and "Hobbies: software<br>" not in r.text
    assert "Hobbies: software" in r.text and 'method="post"' in r.text


def check_flask_home(r):
    assert r.status_code == 200 and r.text == "<h1>Home</h1>"


def check_flask_user(r):
    assert r.status_code == 200 and r.text == "<h1>User 42</h1>"


def check_flask_404(r):
    assert r.status_code == 404 and r.text == "<h1>404 Page Not Found</h1>"


def check_simple(r):
    assert r.status_code == 200 and r.text == "Hello, World!"


def check_reversed(r):
    assert r.status_code == 200 and r.text == "\n!dlroW olleH"


def check_guarded_ok(r):
    assert r.status_code == 200 and r.text == "Hello World!\n"


def check_guarded_fail(r):
    assert r.status_code == 500 and r.text == "500 Server Error"


def check_route_home(r):
    assert r.status_code == 200 and r.text == "Home"


def check_route_about(r):
    assert r.status_code == 200 and r.text == "About"


def check_route_missing(r):
    assert r.status_code == 404 and r.text == "404 Not Found"


CASES = [
    ("app:dynamic_wsgi_app", "GET", "/Tom", None, check_dynamic),
    ("app:dynamic_wsgi_app", "GET", "/", None, check_dynamic_root),
    ("seed_minimal:minimal_wsgi_app", "GET", "/", None, check_minimal),
    ("seed_flask:app", "GET", "/", None, check_flask_home),
    ("seed_flask:app", "GET", "/user/42", None, check_flask_user),
    ("seed_flask:app", "GET", "/nowhere", None, check_flask_404),
    ("seed_environment:application", "GET", "/?age=10&hobbies=software&hobbies=tunning", None, check_environment),
    ("seed_get_post:get_application", "GET", "/?age=10&hobbies=software&hobbies=tunning", None, check_get_form),
    ("seed_get_post:get_application", "GET", "/?age=%3Cscript%3E", None, check_get_escaped),
    ("seed_get_post:post_application", "POST", "/", {"age": "42", "hobbies": ["software"]}, check_post_form),
    ("seed_bard_basic:app", "GET", "/", None, check_hello),
    ("seed_bard_class:app", "GET", "/", None, check_hello),
    ("seed_bard_callable:app", "GET", "/", None, check_hello),
    ("seed_bard_middleware:app", "GET", "/", None, check_hello),
    ("seed_bard_middleware:reversed_app", "GET", "/", None, check_reversed),
    ("seed_bard_middleware:guarded_app", "GET", "/?x=1", None, check_guarded_ok),
    ("seed_bard_middleware:guarded_app", "GET", "/?fail=1", None, check_guarded_fail),
    ("seed_bard_middleware:router_app", "GET", "/", None, check_route_home),
    ("seed_bard_middleware:router_app", "GET", "/about", None, check_route_about),
    ("seed_bard_middleware:router_app", "GET", "/contact", None, check_route_missing),
    ("seed_pep3333_basics:app", "GET", "/", None, check_simple),
]

APPS = sorted({case[0] for case in CASES})


@pytest.mark.parametrize("command", ["wsgi", "worker", "serve"])
@pytest.mark.parametrize("app", APPS)
def test_seed_app(gantry, command, app):
    args = {"serve": ["--no-reload"], "wsgi": ["-w", "2"]}.get(command, [])
    with Worker(gantry, app, *args, command=command) as worker:
        session = requests.Session()  # keep-alive across the app's cases
        for case_app, method, path, data, check in CASES:
            if case_app != app:
                continue
            r = session.request(method, worker.url(path), data=data, headers={"User-Agent": "seed-test/1.0"}, timeout=10)
            check(r)
        assert worker.alive()
        assert "Traceback" not in worker.log
