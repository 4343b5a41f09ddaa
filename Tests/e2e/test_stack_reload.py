"""`gantry -s reload` (HUP): new app code with no failed request; a bad config is refused."""
import threading
import time

import pytest

from conftest import free_port
from stack_support import Stack, copy_app, field, get, pool_block, stack_config


class Load:
    """A few client threads sending GETs until stopped (bounded by `limit` requests each)."""

    def __init__(self, port, threads=4, limit=3000):
        self.port = port
        self.answers = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(limit,)) for _ in range(threads)]
        for thread in self.threads:
            thread.start()

    def run(self, limit):
        for i in range(limit):
            if self.stopping.is_set():
                return
            answer = get(self.port, f"/load{i}")
            with self.lock:
                self.answers.append(answer)

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)
        return self.answers


KEEPALIVE = 'location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }'


@pytest.mark.parametrize("keepalive", [False, True], ids=["fresh-connections", "upstream-keepalive"])
def test_reload_under_load_serves_new_code_with_no_failed_request(gantry, tmp_path, keepalive):
    copy_app(tmp_path)
    port = free_port()
    if keepalive:
        config = stack_config(port, pool_block(workers=2, extra="keepalive 8;"), locations=KEEPALIVE)
    else:
        config = stack_config(port, pool_block(workers=2))
    stack = Stack(gantry, tmp_path, config)
    try:
        assert field(get(port, "/")[1], "version") == "v1"
        old_pids = {field(get(port, f"/{i}")[1], "pid") for i in range(10)}
        load = Load(port)
        time.sleep(0.5)
        app = tmp_path / "stack_app.py"
        app.write_text(app.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
        stack.send("reload", gantry)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and field(get(port, "/")[1], "version") != "v2":
            time.sleep(0.1)
        time.sleep(1.0)  # keep the load on while the old generation drains
        answers = load.stop()
        failures = [a for a in answers if a[0] != 200]
        assert not failures, (len(failures), failures[:3])
        assert len(answers) > 50
        versions = [field(get(port, f"/after{i}")[1], "version") for i in range(10)]
        assert versions == ["v2"] * 10
        new_pids = {field(get(port, f"/p{i}")[1], "pid") for i in range(10)}
        assert len(new_pids) == 2 and not (new_pids & old_pids)
    finally:
        assert stack.stop() == 0


def test_a_reload_with_a_bad_config_is_refused_and_the_stack_keeps_serving(gantry, tmp_path):
    copy_app(tmp_path)
    port = free_port()
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(workers=1)))
    try:
        pid_before = field(get(port, "/")[1], "pid")
        good = stack.config.read_text()
        stack.config.write_text(good.replace("workers 1;", "workers 1;\n        no_such_directive on;"))
        mark = len(stack.output())
        stack.proc.send_signal(1)  # SIGHUP, as `kill -HUP` or systemd's ExecReload
        assert stack.wait_for_output('unknown directive "no_such_directive"', after=mark), stack.output()
        assert "reload refused" in stack.output()[mark:]
        time.sleep(0.5)
        status, body = get(port, "/")
        assert status == 200 and field(body, "pid") == pid_before
        # Once fixed, a reload goes through, routes included.
        assert get(port, "/moved")[1] != "moved\n"
        stack.config.write_text(good.replace("location / {", 'location = /moved { return 200 "moved\\n"; }\n            location / {'))
        stack.proc.send_signal(1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and field(get(port, "/")[1], "pid") == pid_before:
            time.sleep(0.1)
        assert field(get(port, "/")[1], "pid") != pid_before
        assert get(port, "/moved") == (200, "moved\n")
    finally:
        assert stack.stop() == 0


def test_max_requests_recycles_workers_with_no_failed_request(gantry, tmp_path):
    copy_app(tmp_path)
    port = free_port()
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(workers=2, extra="max_requests 40;")))
    try:
        load = Load(port, threads=4, limit=500)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with load.lock:
                pids = {field(body, "pid") for status, body in load.answers if status == 200}
            if len(pids) >= 4:
                break
            time.sleep(0.2)
        answers = load.stop()
        failures = [a for a in answers if a[0] != 200]
        assert not failures, (len(failures), failures[:3])
        pids = {field(body, "pid") for status, body in answers}
        assert len(pids) >= 4, "workers were not recycled"
        assert stack.wait_for_output("reached max requests")
    finally:
        assert stack.stop() == 0


def test_a_reload_whose_new_code_does_not_import_keeps_the_old_workers(gantry, tmp_path):
    copy_app(tmp_path)
    port = free_port()
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(workers=2)))
    try:
        before = {field(get(port, f"/{i}")[1], "pid") for i in range(6)}
        load = Load(port, threads=2, limit=2000)
        app = tmp_path / "stack_app.py"
        app.write_text(app.read_text() + '\nraise ImportError("new code is broken")\n')
        mark = len(stack.output())
        stack.send("reload", gantry)
        assert stack.wait_for_output("Reload of pool app failed", after=mark), stack.output()[mark:]
        answers = load.stop()
        assert "new code is broken" in stack.output()[mark:]
        assert not [a for a in answers if a[0] != 200]
        after = {field(get(port, f"/{i}")[1], "pid") for i in range(6)}
        assert after == before
    finally:
        assert stack.stop() == 0


def test_reload_keeps_client_keepalive_connections_and_routes_them_by_the_new_config(gantry, tmp_path):
    """Clients on kept-alive connections see no failure across a reload (the front does not close
    their connections under them), and the same connection is then served by the new code."""
    import http.client

    copy_app(tmp_path)
    port = free_port()
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(workers=2)))
    failures, answers, stopping = [], [], threading.Event()

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(5000):  # bounded
            if stopping.is_set():
                break
            try:
                connection.request("GET", f"/ka{i}")
                response = connection.getresponse()
                body = response.read().decode()
                answers.append(response.status)
                if response.status != 200:
                    failures.append((response.status, body[:80]))
            except OSError as error:  # a closed connection counts as a failed request
                failures.append(repr(error))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.close()

    try:
        probe = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        probe.request("GET", "/")
        assert field(probe.getresponse().read().decode(), "version") == "v1"
        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        app = tmp_path / "stack_app.py"
        app.write_text(app.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
        stack.send("reload", gantry)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and field(get(port, "/")[1], "version") != "v2":
            time.sleep(0.1)
        time.sleep(1.0)
        stopping.set()
        for thread in threads:
            thread.join(30)
        assert not failures, (len(failures), failures[:3])
        assert len(answers) > 50
        # The connection opened before the reload is still open and now gets the new code.
        probe.request("GET", "/")
        assert field(probe.getresponse().read().decode(), "version") == "v2"
        probe.close()
    finally:
        assert stack.stop() == 0
