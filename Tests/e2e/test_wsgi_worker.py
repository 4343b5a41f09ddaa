"""`gantry worker` as a process: interpreter and venv selection, start-up
errors with distinct exit codes, binds, threads, timeout, signals, control fd,
max-requests, proxy headers, root path, access log."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "apps"))
from wsgi_harness import APPS, Worker, free_port, raw_request, wait_for_port  # noqa: E402

# WorkerExitCode (Sources/Supervisor/WorkerContract.swift)
NO_SHARED_LIBPYTHON, IMPORT_ERROR, CALLABLE_NOT_FOUND, NOT_CALLABLE, BIND_FAILURE, REQUEST_TIMEOUT = 10, 11, 12, 13, 14, 15


def background_get(url):
    """A request whose connection the test expects to be cut."""
    def go():
        try:
            requests.get(url, timeout=30)
        except requests.exceptions.RequestException:
            pass
    threading.Thread(target=go, daemon=True).start()


def run_to_exit(gantry, *args, timeout=30):
    return subprocess.run([str(gantry), "worker", "--chdir", str(APPS), *args], capture_output=True, text=True, timeout=timeout)


# Start-up errors ---------------------------------------------------------------

def test_import_error_prints_traceback(gantry):
    p = run_to_exit(gantry, "-b", f"127.0.0.1:{free_port()}", "import_error:app")
    assert p.returncode == IMPORT_ERROR
    assert "Traceback" in p.stderr and "No module named 'a_module_that_does_not_exist'" in p.stderr


def test_missing_module_is_an_import_error(gantry):
    p = run_to_exit(gantry, "-b", f"127.0.0.1:{free_port()}", "no_such_module:app")
    assert p.returncode == IMPORT_ERROR
    assert "No module named 'no_such_module'" in p.stderr


def test_callable_not_found(gantry):
    p = run_to_exit(gantry, "-b", f"127.0.0.1:{free_port()}", "worker_apps:nope")
    assert p.returncode == CALLABLE_NOT_FOUND
    assert "Failed to find attribute 'nope' in 'worker_apps'." in p.stderr


def test_not_callable(gantry):
    p = run_to_exit(gantry, "-b", f"127.0.0.1:{free_port()}", "worker_apps:not_callable")
    assert p.returncode == NOT_CALLABLE
    assert "Application object must be callable." in p.stderr


def test_factory_raising_is_an_import_error(gantry):
    p = run_to_exit(gantry, "-b", f"127.0.0.1:{free_port()}", "worker_apps:broken_factory()")
    assert p.returncode == IMPORT_ERROR
    assert "KeyError: 'missing setting inside the factory'" in p.stderr


def test_factory_wrong_arguments(gantry):
    p = run_to_exit(gantry, "-b", f"127.0.0.1:{free_port()}", "worker_apps:create_app(1, 2, 3)")
    assert p.returncode == CALLABLE_NOT_FOUND
    assert "TypeError" in p.stderr and "positional argument" in p.stderr


def test_no_shared_libpython(gantry, tmp_path):
    # An interpreter whose build has no shared library (its answer names none that exists).
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho '{\"executable\": \"%s\", \"version\": [3, 11, 0], \"prefix\": \"/nonexistent\", "
                    "\"base_prefix\": \"/nonexistent\", \"exec_prefix\": \"/nonexistent\", \"base_exec_prefix\": \"/nonexistent\", "
                    "\"libdir\": \"/nonexistent/lib\", \"ldlibrary\": \"libpython3.11.a\", \"instsoname\": \"libpython3.11-missing.so.1.0\", "
                    "\"multiarch\": null, \"framework_prefix\": null, \"site_packages\": [], \"path\": []}'\n" % fake)
    fake.chmod(0o755)
    p = run_to_exit(gantry, "--python", str(fake), "-b", f"127.0.0.1:{free_port()}", "worker_apps:slow")
    assert p.returncode == NO_SHARED_LIBPYTHON
    assert "has no shared libpython" in p.stderr
    assert len([line for line in p.stderr.splitlines() if line.strip()]) == 1


def test_interpreter_not_found(gantry):
    p = run_to_exit(gantry, "--python", "/nonexistent/python3", "worker_apps:slow")
    assert p.returncode == NO_SHARED_LIBPYTHON
    assert 'python interpreter "/nonexistent/python3" not found' in p.stderr


def test_bind_failure(gantry):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = run_to_exit(gantry, "-b", f"127.0.0.1:{port}", "worker_apps:slow")
    assert p.returncode == BIND_FAILURE
    assert "Address already in use" in p.stderr or "in use" in p.stderr


# Interpreters and virtualenvs ------------------------------------------------------

@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(root / "env")], check=True)
    site = next((root / "env" / "lib").glob("python3*/site-packages"))
    # A module importable only inside this venv, plus a .pth-added directory.
    (site / "only_in_this_venv.py").write_text("WHERE = __file__\n")
    extra = root / "extra"
    extra.mkdir()
    (extra / "via_pth.py").write_text("OK = True\n")
    (site / "gantry_test.pth").write_text(str(extra) + "\n")
    (root / "venvapp.py").write_text(
        "import sys, only_in_this_venv, via_pth\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [('%s|%s|%s' % (only_in_this_venv.WHERE, sys.prefix, via_pth.OK)).encode()]\n")
    return root


def test_venv_packages_are_importable(gantry, venv):
    assert subprocess.run([sys.executable, "-c", "import only_in_this_venv"], capture_output=True).returncode != 0
    with Worker(gantry, "venvapp:app", "--python", str(venv / "env" / "bin" / "python"), chdir=venv) as w:
        where, prefix, pth = requests.get(w.url("/")).text.split("|")
        assert where.startswith(str(venv / "env"))
        assert prefix == str(venv / "env")
        assert pth == "True"


def test_venv_missing_package_without_it(gantry, venv):
    p = subprocess.run([str(gantry), "worker", "--chdir", str(venv), "-b", f"127.0.0.1:{free_port()}", "venvapp:app"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == IMPORT_ERROR and "only_in_this_venv" in p.stderr


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3.11") or os.path.realpath(sys.executable) == "/usr/bin/python3.11",
                    reason="needs a second CPython")
def test_another_interpreter_same_binary(gantry):
    with Worker(gantry, "seed_bard_basic:app", "--python", "/usr/bin/python3.11") as w:
        assert requests.get(w.url("/")).text == "Hello World!\n"


# Flags --------------------------------------------------------------------------------

def test_env_chdir_pythonpath_and_factory(gantry, tmp_path):
    (tmp_path / "elsewhere.py").write_text(
        "import os\n"
        "def make(name='x', **kw):\n"
        "    def app(environ, start_response):\n"
        "        start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "        return [('%s %s %s' % (name, kw, os.environ['GANTRY_TEST_ENV'])).encode()]\n"
        "    return app\n")
    with Worker(gantry, "elsewhere:make('factory', extra=[1, 2])", "--pythonpath", f"{tmp_path},/nonexistent",
                "--env", "GANTRY_TEST_ENV=from-flag") as w:
        assert requests.get(w.url("/")).text == "factory {'extra': [1, 2]} from-flag"
    with Worker(gantry, "worker_apps:create_app(greeting='hi')") as w:
        assert requests.get(w.url("/")).text == "hi!"


def test_file_wrapper_is_sent_with_sendfile(gantry):
    static = (APPS / "static.txt").read_bytes()
    with Worker(gantry, "worker_apps:sendfile_app") as w:
        s = requests.Session()
        r = s.get(w.url("/"))
        assert r.status_code == 200 and r.content == static
        assert r.headers["Content-Length"] == str(len(static))
        assert s.get(w.url("/closed")).text == "yes"  # close() of the wrapper closed the file
        r = s.get(w.url("/offset"))
        assert r.content == static[100:]
        r = s.get(w.url("/declared"))
        assert r.content == static[:50] and r.headers["Content-Length"] == "50"
        r = s.head(w.url("/"))
        assert r.content == b"" and r.headers["Content-Length"] == str(len(static))
        assert "read() called" not in w.log


def test_large_bodies_read_whole(gantry):
    body = bytes(range(256)) * 12000  # 3 MB: far past the 256 KiB read-ahead
    expected = "%d %d" % (len(body), sum(body) % 1000003)
    with Worker(gantry, "worker_apps:read_whole_body") as w:
        assert requests.post(w.url("/"), data=body).text == expected
        chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
        assert requests.post(w.url("/"), data=chunks).text == expected
        line = body.replace(b"\n", b"") + b"\nafter"
        assert requests.post(w.url("/line"), data=line).text.split()[0] == str(len(line) - len(b"after"))


def test_environ_details(gantry):
    with Worker(gantry, "worker_apps:environ_json") as w:
        r = requests.get(w.url("/caf%C3%A9/a%2Fb?q=%20x"), headers={"X-Multi": "a", "Content-Type": "text/x-test",
                                                                      "X-With_Underscore": "dropped"})
        data = r.json()
        assert data["PATH_INFO"] == "/café/a/b".encode("utf-8").decode("latin-1")
        assert data["path_info_bytes"] == list("/café/a/b".encode("utf-8"))
        assert data["QUERY_STRING"] == "q=%20x"
        assert data["SERVER_NAME"] == "127.0.0.1" and data["SERVER_PORT"] == str(w.port)
        assert data["SERVER_PROTOCOL"] == "HTTP/1.1"
        assert data["REMOTE_ADDR"] == "127.0.0.1" and data["REMOTE_PORT"].isdigit()
        assert data["CONTENT_TYPE"] == "text/x-test" and data["HTTP_CONTENT_TYPE"] is None
        assert data["HTTP_X_WITH_UNDERSCORE"] is None
        assert data["wsgi.multithread"] is False and data["wsgi.multiprocess"] is False
        answer = raw_request(w.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Multi: one\r\nX-Multi: two\r\nConnection: close\r\n\r\n")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["HTTP_X_MULTI"] == "one, two"


def test_non_utf8_request_bytes_reach_the_app_latin1_decoded(gantry):
    """PEP 3333 native strings: each byte of a header value or the path is one
    character (latin-1), never U+FFFD."""
    with Worker(gantry, "worker_apps:environ_json") as w:
        answer = raw_request(w.port, b"GET /caf\xe9%C3%A9?q=\xff HTTP/1.1\r\nHost: x\r\n"
                                     b"X-Latin: \xe9t\xe9 \xff\x80ok\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        data = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert data["HTTP_X_LATIN"] == b"\xe9t\xe9 \xff\x80ok".decode("latin-1")
        assert data["path_info_bytes"] == list(b"/caf\xe9\xc3\xa9")
        assert data["QUERY_STRING"] == "q=\xff"
        assert data["RAW_URI"] == b"/caf\xe9%C3%A9?q=\xff".decode("latin-1")


def test_an_answer_before_the_body_is_read_reaches_a_client_still_sending(gantry):
    """The app answers without reading an 8 MiB body: the worker reads and drops the rest instead of
    closing at once, so the client, still sending, gets the whole answer, never a reset, and the
    kept-alive connection then serves the next request; the worker logs no bad request."""
    with Worker(gantry, "worker_apps:environ_json") as w:
        sock = socket.create_connection(("127.0.0.1", w.port), timeout=10)
        for n in range(3):
            sock.sendall(b"POST /early%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (n, 8 << 20))
            piece = b"p" * (1 << 20)
            for _ in range(8):
                sock.sendall(piece)   # would fail with EPIPE/ECONNRESET if the worker closed at once
            answer = b""
            while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < length_of(answer):
                chunk = sock.recv(65536)
                assert chunk, f"closed after {answer[:300]!r}"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["PATH_INFO"] == "/early%d" % n
        sock.close()
        assert "bad request" not in w.log


def length_of(answer):
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    return int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])


def test_forwarded_headers_trusted_from_loopback_only(gantry):
    headers = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto": "https"}
    with Worker(gantry, "worker_apps:environ_json") as w:
        data = requests.get(w.url("/"), headers=headers).json()
        assert data["REMOTE_ADDR"] == "198.51.100.7" and data["wsgi.url_scheme"] == "https"
        data = requests.get(w.url("/"), headers={"X-Real-IP": "192.0.2.1"}).json()
        assert data["REMOTE_ADDR"] == "192.0.2.1" and data["wsgi.url_scheme"] == "http"
    with Worker(gantry, "worker_apps:environ_json", "--forwarded-allow-ips", "10.0.0.0/8") as w:
        data = requests.get(w.url("/"), headers=headers).json()
        assert data["REMOTE_ADDR"] == "127.0.0.1" and data["wsgi.url_scheme"] == "http"


def test_root_path(gantry):
    with Worker(gantry, "worker_apps:environ_json", "--root-path", "/mount") as w:
        data = requests.get(w.url("/mount/x/y")).json()
        assert data["SCRIPT_NAME"] == "/mount" and data["PATH_INFO"] == "/x/y"
        assert requests.get(w.url("/elsewhere")).status_code == 404
        assert requests.get(w.url("/mountain")).status_code == 404


def test_unix_socket_with_umask(gantry, tmp_path):
    path = tmp_path / "app.sock"
    w = Worker(gantry, "worker_apps:environ_json", "-b", f"unix:{path}", "--umask", "077", bind=False)
    try:
        deadline = time.time() + 20
        while not path.exists() and time.time() < deadline and w.alive():
            time.sleep(0.05)
        assert path.exists(), w.log
        assert (path.stat().st_mode & 0o777) == 0o700
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(path))
            s.sendall(b"GET /u HTTP/1.1\r\nHost: example.org:8080\r\nX-Real-IP: 198.51.100.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        data = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert data["SERVER_NAME"] == "example.org" and data["SERVER_PORT"] == "8080"
        assert data["REMOTE_ADDR"] == "198.51.100.1"  # unix peers are trusted
    finally:
        w.stop()


def test_several_binds_and_listen_fd(gantry):
    inherited = socket.socket()
    inherited.bind(("127.0.0.1", 0))
    inherited.listen()
    fd_port = inherited.getsockname()[1]
    second = free_port()
    Worker.pass_fds = (inherited.fileno(),)
    try:
        w = Worker(gantry, "seed_bard_basic:app", "-b", f"127.0.0.1:{second}", "--listen-fd", str(inherited.fileno()))
    finally:
        Worker.pass_fds = ()
    inherited.close()
    with w.start():
        for port in (w.port, second, fd_port):
            assert requests.get(f"http://127.0.0.1:{port}/").text == "Hello World!\n"


def test_access_log_format(gantry):
    w = Worker(gantry, "seed_bard_basic:app", "--access-logfile", "-")
    with w.start():
        requests.get(w.url("/path?q=1"), headers={"User-Agent": "ua-test", "Referer": "http://ref/"})
        assert w.wait_log('"GET /path?q=1 HTTP/1.1" 200 13 "http://ref/" "ua-test"')
        line = [l for l in w.log.splitlines() if "GET /path?q=1" in l][0]
        assert line.startswith("127.0.0.1 - - [")


# Concurrency and timeouts ----------------------------------------------------------

def test_threads_run_requests_concurrently(gantry):
    with Worker(gantry, "worker_apps:slow", "--threads", "4") as w:
        results = []

        def call():
            results.append(requests.get(w.url("/?0.5")).text)
        threads = [threading.Thread(target=call) for _ in range(4)]
        started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 4
        assert max(int(r.split("peak ")[1].split()[0]) for r in results) >= 2
        assert time.time() - started < 1.9  # 4 × 0.5 s one after another would take 2 s
        assert requests.get(w.url("/?0")).status_code == 200


def test_single_thread_serialises_requests(gantry):
    with Worker(gantry, "worker_apps:slow") as w:
        results = []
        threads = [threading.Thread(target=lambda: results.append(requests.get(w.url("/?0.2")).text)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all("peak 1" in r for r in results)


def test_one_thread_runs_requests_on_the_loop_or_the_python_thread_never_both(gantry):
    with Worker(gantry, "worker_apps:slow") as w:
        # Without a body a request runs on the event loop; with one, on the Python thread.
        loop_thread = requests.get(w.url("/?0")).text.split("thread ")[1]
        python_thread = requests.post(w.url("/?0"), data=b"x" * 1000).text.split("thread ")[1]
        assert loop_thread != python_thread
        results = []
        calls = [lambda: results.append(requests.get(w.url("/?0.3")).text),
                 lambda: results.append(requests.post(w.url("/?0.3"), data=b"x" * 1000).text)] * 3
        threads = [threading.Thread(target=call) for call in calls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 6 and all("peak 1" in r for r in results), results


def test_the_escape_hatch_keeps_every_request_on_the_python_thread(gantry):
    # `env GANTRY_WSGI_INLINE=0;` in an app_pool arrives as --env (docs/deploy.md).
    with Worker(gantry, "worker_apps:slow", "--env", "GANTRY_WSGI_INLINE=0") as w:
        without_body = requests.get(w.url("/?0")).text.split("thread ")[1]
        with_body = requests.post(w.url("/?0"), data=b"x" * 1000).text.split("thread ")[1]
        assert without_body == with_body


def test_same_thread_keeps_every_request_on_the_python_thread(gantry):
    with Worker(gantry, "worker_apps:slow", "--same-thread") as w:
        without_body = requests.get(w.url("/?0")).text.split("thread ")[1]
        with_body = requests.post(w.url("/?0"), data=b"x" * 1000).text.split("thread ")[1]
        assert without_body == with_body


def test_same_thread_with_more_threads_is_refused(gantry):
    result = run_to_exit(gantry, "worker_apps:slow", "--threads", "2", "--same-thread")
    assert result.returncode != 0
    assert 'invalid --threads "2": --same-thread needs --threads 1' in result.stderr + result.stdout


def test_write_callable_output_is_whole_and_later_requests_move_to_the_python_thread(gantry):
    with Worker(gantry, "worker_apps:writer") as w:
        for _ in range(2):
            r = requests.get(w.url("/"), timeout=30)
            assert r.status_code == 200 and r.content == b"w" * (64 * 65536)
        assert w.log.count("the app calls write()") == 1


def rss_bytes(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_streamed_response_waits_for_a_slow_client_instead_of_filling_memory(gantry):
    with Worker(gantry, "worker_apps:big_stream") as w:
        assert requests.get(w.url("/"), timeout=30).content == b"s" * (64 << 20)  # warm: buffers allocated once
        before = rss_bytes(w.proc.pid)
        with socket.create_connection(("127.0.0.1", w.port), timeout=30) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            received = len(s.recv(65536))
            time.sleep(1.0)  # a client that stalls: the app's generator must wait, not run ahead
            assert rss_bytes(w.proc.pid) - before < 32 << 20
            while True:
                data = s.recv(1 << 20)
                received += len(data)
                if not data or received >= (64 << 20):
                    break
            assert received >= 64 << 20


@pytest.mark.parametrize("path", ["/hang", "/sleep"])
def test_timeout_answers_504_and_exits(gantry, path):
    w = Worker(gantry, "worker_apps:hang", "--timeout", "1")
    with w.start():
        assert requests.get(w.url("/fast")).text == "fine"
        started = time.time()
        r = requests.get(w.url(path), timeout=20)
        assert r.status_code == 504
        assert time.time() - started < 10
        assert w.proc.wait(timeout=10) == REQUEST_TIMEOUT
        assert "WORKER TIMEOUT" in w.log


def test_time_waiting_in_the_queue_does_not_count_toward_the_timeout(gantry):
    w = Worker(gantry, "worker_apps:slow", "--timeout", "2")
    with w.start():
        results = []
        threads = [threading.Thread(target=lambda: results.append(requests.get(w.url("/?0.8"), timeout=30).status_code))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [200] * 4
        assert w.alive() and "WORKER TIMEOUT" not in w.log


# Signals, control fd, max-requests ------------------------------------------------------

def test_sigterm_is_fast(gantry):
    w = Worker(gantry, "worker_apps:hang")
    with w.start():
        background_get(w.url("/sleep"))
        time.sleep(0.3)
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=5) == 0


def test_sigquit_finishes_in_flight_requests(gantry):
    w = Worker(gantry, "worker_apps:slow")
    with w.start():
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("r", requests.get(w.url("/?1"))))
        t.start()
        time.sleep(0.3)
        w.proc.send_signal(signal.SIGQUIT)
        t.join(timeout=10)
        assert result["r"].status_code == 200 and result["r"].text.startswith("slept 1")
        assert w.proc.wait(timeout=10) == 0
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(w.url("/?0"), timeout=2)


def test_sigquit_graceful_timeout(gantry):
    w = Worker(gantry, "worker_apps:hang", "--graceful-timeout", "1")
    with w.start():
        background_get(w.url("/sleep"))
        time.sleep(0.3)
        started = time.time()
        w.proc.send_signal(signal.SIGQUIT)
        assert w.proc.wait(timeout=10) == 0
        assert 0.5 < time.time() - started < 5
        assert "graceful timeout" in w.log


def test_control_fd_ready_heartbeat_recycle(gantry):
    parent, child = socket.socketpair()
    Worker.pass_fds = (child.fileno(),)
    try:
        w = Worker(gantry, "seed_bard_basic:app", "--control-fd", str(child.fileno()), "--timeout", "1", "--max-requests", "3")
    finally:
        Worker.pass_fds = ()
    child.close()
    parent.settimeout(20)
    received = b""
    try:
        while b"ready\n" not in received:
            received += parent.recv(100)
        assert received.startswith(b"ready\n")
        for _ in range(3):
            assert requests.get(w.url("/")).status_code == 200
        while b"recycle\n" not in received:
            received += parent.recv(100)
        while received.count(b"heartbeat\n") < 2:
            received += parent.recv(100)
        assert w.alive()  # with a supervisor, the worker waits for SIGQUIT after asking
        assert requests.get(w.url("/")).status_code == 200
        w.proc.send_signal(signal.SIGQUIT)
        assert w.proc.wait(timeout=10) == 0
    finally:
        parent.close()
        w.stop()


def test_worker_exits_when_the_control_channel_closes(gantry):
    parent, child = socket.socketpair()
    Worker.pass_fds = (child.fileno(),)
    try:
        w = Worker(gantry, "seed_bard_basic:app", "--control-fd", str(child.fileno()))
    finally:
        Worker.pass_fds = ()
    child.close()
    parent.settimeout(20)
    try:
        assert parent.recv(100).startswith(b"ready")
        parent.close()  # the supervisor died
        assert w.proc.wait(timeout=10) == 0
        assert "control channel closed" in w.log
    finally:
        w.stop()


def test_serve_worker_exits_when_serve_is_killed(gantry):
    w = Worker(gantry, "seed_bard_basic:app", "--no-reload", command="serve")
    with w.start():
        assert requests.get(w.url("/")).status_code == 200
        pid = int(w.log.split("Booting worker with pid: ")[1].split()[0])
        w.proc.kill()
        w.proc.wait()
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                break
            if state == "Z":  # exited, waiting for init to reap it
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("the worker outlived gantry serve")


def test_max_requests_alone_exits_after_the_last(gantry):
    with Worker(gantry, "seed_bard_basic:app", "--max-requests", "2") as w:
        s = requests.Session()
        assert s.get(w.url("/")).status_code == 200
        assert s.get(w.url("/")).status_code == 200
        assert w.proc.wait(timeout=10) == 0
        assert "max requests (2) reached" in w.log


def test_idle_keep_alive_connections_are_closed(gantry):
    with Worker(gantry, "seed_bard_basic:app", "--keep-alive", "0.5") as w:
        with socket.create_connection(("127.0.0.1", w.port), timeout=10) as s:
            for _ in range(3):  # the deadline moves with each request
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert s.recv(65536).endswith(b"Hello World!\n")
                time.sleep(0.2)
            started = time.time()
            assert s.recv(65536) == b""  # closed by the server
            assert time.time() - started < 5


def test_connections_are_freed(gantry):
    """Thousands of one-request connections must not grow the worker's memory
    (a handler/context cycle once kept every connection alive)."""
    def rss_kib(pid):
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

    def connections(count, port):
        for _ in range(count):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                while s.recv(65536):
                    pass

    with Worker(gantry, "seed_bard_basic:app") as w:
        connections(1000, w.port)  # warm up allocators and caches
        before = rss_kib(w.proc.pid)
        connections(5000, w.port)
        grown = rss_kib(w.proc.pid) - before
        assert grown < 3000, f"RSS grew {grown} KiB over 5000 connections"
