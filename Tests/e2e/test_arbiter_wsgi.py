"""`gantry wsgi` as an arbiter: real binary, real worker processes, real CPython apps, real TCP.

Every wait is bounded; nothing asserts on timing, only on outcomes (counts, statuses, pids, logs).
"""
import http.client
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import ROOT

APPS = ROOT / "Tests/e2e/apps"


def children_of(pid):
    """Pids whose parent is `pid` (the arbiter's workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


def eventually(predicate, timeout=30, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class Arbiter:
    """One `gantry wsgi` process, its log, and an HTTP client for it."""

    def __init__(self, gantry, tmp_path, *args, app="arbiter_app:application", workers=2, version="v1"):
        self.version_file = tmp_path / "version"
        self.version_file.write_text(version)
        self.pid_file = tmp_path / "gantry.pid"
        env = dict(os.environ, ARBITER_VERSION_FILE=str(self.version_file))
        command = [str(gantry), "wsgi", "-w", str(workers), "-b", "127.0.0.1:0", "--chdir", str(APPS),
                   "--pid", str(self.pid_file), *args, app]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = None

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def log(self):
        return "".join(self.lines)

    def wait_ready(self, timeout=60):
        assert eventually(lambda: "Ready:" in self.log or self.process.poll() is not None, timeout), self.log
        assert self.process.poll() is None, self.log
        match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", self.log)
        assert match, self.log
        self.port = int(match.group(1))
        return self

    def workers(self):
        return children_of(self.process.pid)

    def get(self, path="/", timeout=30):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def signal(self, number):
        self.process.send_signal(number)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(10)


@pytest.fixture
def arbiters(gantry, tmp_path):
    started = []

    def start(*args, **kwargs):
        arbiter = Arbiter(gantry, tmp_path, *args, **kwargs)
        started.append(arbiter)
        return arbiter

    yield start
    for arbiter in started:
        arbiter.stop()


class Load:
    """A bounded client loop (one connection per request) counting failures."""

    def __init__(self, arbiter, path="/", limit=5000, seconds=120):
        self.arbiter, self.path, self.limit, self.seconds = arbiter, path, limit, seconds
        self.ok, self.failures, self.bodies = 0, [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        end = time.monotonic() + self.seconds
        while not self._stop.is_set() and self.ok + len(self.failures) < self.limit and time.monotonic() < end:
            try:
                status, body = self.arbiter.get(self.path, timeout=30)
                if status == 200:
                    self.ok += 1
                    self.bodies.append(body)
                else:
                    self.failures.append(f"status {status}: {body[:200]}")
            except Exception as error:  # noqa: BLE001 - every failure counts
                self.failures.append(repr(error))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(60)

    def wait_for(self, predicate, timeout=60):
        return eventually(lambda: predicate(self) or not self._thread.is_alive(), timeout) and predicate(self)


def test_workers_serve_and_the_log_reads_like_gunicorn(arbiters):
    arbiter = arbiters(workers=3).wait_ready()
    assert len(arbiter.workers()) == 3
    for _ in range(30):
        status, body = arbiter.get()
        assert status == 200
        assert int(body.split()[0]) in arbiter.workers()
    assert "Starting gantry" in arbiter.log
    assert "Listening at: http://127.0.0.1:" in arbiter.log
    for pid in arbiter.workers():
        assert f"Booting worker with pid: {pid}" in arbiter.log


def test_pid_file_holds_the_arbiter_pid_and_is_removed_at_exit(arbiters):
    arbiter = arbiters(workers=1).wait_ready()
    assert arbiter.pid_file.read_text().strip() == str(arbiter.process.pid)
    arbiter.signal(signal.SIGTERM)
    assert arbiter.process.wait(30) == 0
    assert not arbiter.pid_file.exists()


def test_a_killed_worker_is_replaced_and_service_continues(arbiters):
    arbiter = arbiters(workers=2).wait_ready()
    victim, survivor = arbiter.workers()
    os.kill(victim, signal.SIGKILL)
    replaced = eventually(lambda: len(arbiter.workers()) == 2 and victim not in arbiter.workers())
    assert replaced, arbiter.log
    assert survivor in arbiter.workers()
    assert f"Worker (pid:{victim}) was sent SIGKILL" in arbiter.log
    for _ in range(20):
        assert arbiter.get()[0] == 200


def test_an_app_that_cannot_be_imported_fails_fast_without_a_restart_loop(arbiters):
    arbiter = arbiters("--log-level", "debug", workers=3, app="arbiter_broken:application")
    code = arbiter.process.wait(60)
    arbiter._reader.join(10)
    assert code != 0
    assert "module_that_does_not_exist" in arbiter.log, arbiter.log
    # One spawn per worker slot: no restarts after a permanent failure.
    assert arbiter.log.count("Spawned worker pid") == 3, arbiter.log
    assert "could not be imported" in arbiter.log
    assert "Reason:" in arbiter.log


def test_same_thread_reaches_the_workers(arbiters):
    arbiter = arbiters("--same-thread", app="worker_apps:slow", workers=1).wait_ready()

    def thread_of(method, body=None):
        connection = http.client.HTTPConnection("127.0.0.1", arbiter.port, timeout=30)
        try:
            connection.request(method, "/?0", body=body)
            return connection.getresponse().read().decode().split("thread ")[1]
        finally:
            connection.close()

    assert thread_of("GET") == thread_of("POST", b"x" * 1000)


def test_same_thread_with_more_threads_is_refused(gantry):
    result = subprocess.run([str(gantry), "wsgi", "--threads", "2", "--same-thread", "app:application"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "--same-thread needs --threads 1" in result.stderr


def test_ttin_and_ttou_change_the_worker_count(arbiters):
    arbiter = arbiters("--log-level", "debug", workers=2).wait_ready()
    arbiter.signal(signal.SIGTTIN)
    assert eventually(lambda: len(arbiter.workers()) == 3), arbiter.log
    # Let the third worker get ready, so that TTOU retires a serving worker (gracefully).
    assert eventually(lambda: arbiter.log.count(") ready") == 3), arbiter.log
    arbiter.signal(signal.SIGTTOU)
    assert eventually(lambda: len(arbiter.workers()) == 2), arbiter.log
    arbiter.signal(signal.SIGTTOU)
    assert eventually(lambda: len(arbiter.workers()) == 1), arbiter.log
    arbiter.signal(signal.SIGTTOU)  # never below one
    time.sleep(0.5)
    assert len(arbiter.workers()) == 1
    assert arbiter.get()[0] == 200


def test_hup_under_load_fails_no_request_and_serves_the_new_code(arbiters):
    arbiter = arbiters(workers=2, version="v1").wait_ready()
    old_workers = set(arbiter.workers())
    with Load(arbiter) as load:
        assert load.wait_for(lambda l: l.ok >= 50), load.failures
        arbiter.version_file.write_text("v2")
        arbiter.signal(signal.SIGHUP)
        assert load.wait_for(lambda l: any(b.endswith(" v2\n") for b in l.bodies)), arbiter.log
        seen = len(load.bodies)
        assert load.wait_for(lambda l: len(l.bodies) >= seen + 50)
    assert load.failures == [], load.failures[:5]
    assert eventually(lambda: not (set(arbiter.workers()) & old_workers)), arbiter.log
    assert len(arbiter.workers()) == 2
    assert arbiter.get()[1].endswith(" v2\n")


class KeepAliveLoad:
    """Clients that keep their connection open between requests (as wrk and proxies do), each
    reconnecting only when an answer said `Connection: close`. Bounded in count and time."""

    def __init__(self, arbiter, clients=4, limit=20000, seconds=120):
        self.arbiter, self.limit, self.seconds = arbiter, limit, seconds
        self.ok, self.failures, self.bodies = 0, [], []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self):
        end = time.monotonic() + self.seconds
        connection = http.client.HTTPConnection("127.0.0.1", self.arbiter.port, timeout=30)
        while not self._stop.is_set() and self.ok + len(self.failures) < self.limit and time.monotonic() < end:
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                body = response.read().decode()
                with self._lock:
                    if response.status == 200:
                        self.ok += 1
                        self.bodies.append(body)
                    else:
                        self.failures.append(f"status {response.status}: {body[:200]}")
                if response.will_close:
                    connection.close()  # the next request opens a new connection
            except Exception as error:  # noqa: BLE001 - every failure counts
                with self._lock:
                    self.failures.append(repr(error))
                connection.close()
        connection.close()

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def wait_for(self, predicate, timeout=60):
        alive = lambda: any(t.is_alive() for t in self._threads)  # noqa: E731
        return eventually(lambda: predicate(self) or not alive(), timeout) and predicate(self)


def test_hup_under_keep_alive_load_fails_no_request(arbiters):
    # A worker told to drain answers its kept-alive clients `Connection: close` and waits for
    # their requests already on the way, instead of closing under them.
    arbiter = arbiters(workers=2, version="v1").wait_ready()
    with KeepAliveLoad(arbiter) as load:
        for round in range(3):
            assert load.wait_for(lambda l: l.ok >= 300 * (round + 1)), load.failures[:5]
            arbiter.signal(signal.SIGHUP)
            time.sleep(0.5)
        seen = load.ok
        assert load.wait_for(lambda l: l.ok >= seen + 300)
    assert load.failures == [], load.failures[:5]


def test_max_requests_recycles_workers_under_load_without_a_failed_request(arbiters):
    arbiter = arbiters("--max-requests", "20", "--max-requests-jitter", "5", workers=2).wait_ready()
    def pids(load):
        return {body.split()[0] for body in list(load.bodies)}

    # Load until two recycles have completed (each needs a replacement to boot), bounded.
    with Load(arbiter, limit=50000, seconds=90) as load:
        assert load.wait_for(lambda l: len(pids(l)) >= 4, timeout=90), arbiter.log[-3000:]
    assert load.failures == [], load.failures[:5]
    assert "reached max requests" in arbiter.log


def test_quit_finishes_in_flight_requests(arbiters, tmp_path):
    arbiter = arbiters(workers=1).wait_ready()
    marker = tmp_path / "in-flight"
    result = {}

    def slow_request():
        result["response"] = arbiter.get(f"/sleep?s=2&marker={marker}")

    client = threading.Thread(target=slow_request)
    client.start()
    assert eventually(marker.exists), arbiter.log
    arbiter.signal(signal.SIGQUIT)
    client.join(60)
    assert result.get("response", (None,))[0] == 200, arbiter.log
    assert arbiter.process.wait(60) == 0
    assert not arbiter.workers()


def test_a_request_past_the_timeout_gets_504_and_its_worker_is_replaced(arbiters):
    arbiter = arbiters("--timeout", "2", workers=1).wait_ready()
    [worker] = arbiter.workers()
    status, _ = arbiter.get("/sleep?s=30", timeout=60)
    assert status == 504
    replaced = eventually(lambda: len(arbiter.workers()) == 1 and worker not in arbiter.workers())
    assert replaced, arbiter.log
    assert arbiter.get()[0] == 200


def test_unix_and_tcp_binds_are_shared_by_the_workers_and_the_socket_file_is_removed(arbiters, tmp_path):
    import socket
    import stat

    path = tmp_path / "app.sock"
    arbiter = arbiters("-b", f"unix:{path}", "--umask", "0o007", workers=2).wait_ready()
    assert stat.S_ISSOCK(path.stat().st_mode)
    assert stat.S_IMODE(path.stat().st_mode) == 0o770
    assert f"unix:{path}" in arbiter.log
    client = socket.socket(socket.AF_UNIX)
    client.settimeout(30)
    client.connect(str(path))
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply = b""
    while chunk := client.recv(65536):
        reply += chunk
    client.close()
    assert reply.startswith(b"HTTP/1.1 200")
    assert int(reply.split(b"\r\n\r\n", 1)[1].split()[0]) in arbiter.workers()
    assert arbiter.get()[0] == 200
    arbiter.signal(signal.SIGTERM)
    assert arbiter.process.wait(30) == 0
    assert not path.exists()


def test_a_worker_that_keeps_dying_is_restarted_with_backoff_then_given_up(arbiters):
    arbiter = arbiters("--log-level", "debug", workers=1, app="arbiter_crashing:application")
    code = arbiter.process.wait(120)
    arbiter._reader.join(10)
    assert code != 0
    assert "keeps dying" in arbiter.log, arbiter.log
    assert "restarting a worker in" in arbiter.log
    assert arbiter.log.count("Spawned worker pid") == 5, arbiter.log


def test_a_frozen_worker_is_killed_when_its_heartbeat_stops(arbiters):
    arbiter = arbiters("--timeout", "2", workers=1).wait_ready()
    [worker] = arbiter.workers()
    try:
        arbiter.get("/freeze", timeout=30)
    except Exception:  # noqa: BLE001 - the frozen worker's connection dies with it
        pass
    replaced = eventually(lambda: len(arbiter.workers()) == 1 and worker not in arbiter.workers())
    assert replaced, arbiter.log
    assert f"WORKER TIMEOUT (pid:{worker})" in arbiter.log
    assert arbiter.get()[0] == 200
