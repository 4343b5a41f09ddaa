"""The whole stack from one config: static files, app pools as upstreams, start-up checks."""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import free_port
from stack_support import Stack, copy_app, field, get, pool_block, stack_config

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_static_and_app_paths_with_real_ip_and_balancing(gantry, tmp_path):
    copy_app(tmp_path)
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "hello.txt").write_text("static hello\n")
    port = free_port()
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(workers=2), static_root="public"))
    try:
        assert re.search(rf"ready: http://127\.0\.0\.1:{port}; app_pool app: 2 workers", stack.output())
        assert get(port, "/static/hello.txt") == (200, "static hello\n")
        status, body = get(port, "/hello")
        assert status == 200 and field(body, "path") == "/hello"
        assert field(body, "real_ip") == "127.0.0.1"
        pids = {field(get(port, f"/n{i}")[1], "pid") for i in range(20)}
        assert len(pids) == 2, pids
        # Workers are children of the stack, and their sockets are private to this account.
        sockets = list(pathlib.Path("/tmp").glob(f"gantry-{stack.proc.pid}-*/app.*.sock"))
        assert len(sockets) == 2
        assert os.stat(sockets[0].parent).st_mode & 0o777 == 0o700
    finally:
        assert stack.stop(signal.SIGQUIT) == 0
    assert not list(pathlib.Path("/tmp").glob(f"gantry-{stack.proc.pid}-*")), "socket directory left behind"
    assert not (tmp_path / "logs" / "gantry.pid").exists()


def test_pid_file_and_quit_finishes_in_flight_requests(gantry, tmp_path):
    copy_app(tmp_path)
    port = free_port()
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(workers=1)))
    pid_file = tmp_path / "logs" / "gantry.pid"
    assert pid_file.read_text().strip() == str(stack.proc.pid)
    import threading
    result = {}
    slow = threading.Thread(target=lambda: result.update(answer=get(port, "/slow?1.5")))
    slow.start()
    time.sleep(0.5)
    stack.send("quit", gantry)
    slow.join(10)
    assert result["answer"][0] == 200, result
    assert stack.proc.wait(15) == 0
    assert not pid_file.exists()
    assert get(port, "/")[0] == 0  # no longer listening


def test_app_that_cannot_be_imported_fails_start_up_with_the_python_error(gantry, tmp_path):
    copy_app(tmp_path, "stack_broken.py")
    port = free_port()
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(app="stack_broken:application")), expect_ready=False)
    code = stack.proc.wait(30)
    output = stack.output()
    stack.stop()
    assert code != 0
    assert "stack_broken refuses to import" in output  # the Python traceback
    assert re.search(r'\[emerg\] app pool "app": worker failed to boot: exit code 11', output), output
    assert "ready:" not in output


def test_a_worker_killed_under_load_only_costs_its_own_requests(gantry, tmp_path):
    copy_app(tmp_path)
    port = free_port()
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(workers=2)))
    try:
        pids = {field(get(port, f"/{i}")[1], "pid") for i in range(10)}
        assert len(pids) == 2
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(get, port, f"/load{i}") for i in range(300)]
            time.sleep(0.2)
            os.kill(int(sorted(pids)[0]), signal.SIGKILL)
            answers = [f.result() for f in futures]
        # GETs whose worker died are retried on the other one: none fails.
        failures = [a for a in answers if a[0] != 200]
        assert not failures, failures[:3]
        assert stack.wait_for_output("SIGKILL")
        # The dead worker is replaced: two distinct workers answer again.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            now = {field(get(port, f"/after{i}")[1], "pid") for i in range(10)}
            if len(now) == 2 and sorted(pids)[0] not in now:
                break
            time.sleep(0.2)
        assert len(now) == 2 and sorted(pids)[0] not in now, now
    finally:
        stack.stop()


def test_the_readme_main_command_serves_the_example(gantry, tmp_path):
    # deploy/example as the README runs it (`gantry -p deploy/example -c gantry.conf`), on a free port.
    example = tmp_path / "example"
    shutil.copytree(ROOT / "deploy" / "example", example, ignore=shutil.ignore_patterns("logs"))
    port = free_port()
    config = (example / "gantry.conf").read_text().replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    stack = Stack(gantry, example, config)
    try:
        status, body = get(port, "/static/hello.txt")
        assert status == 200 and body == (example / "static" / "hello.txt").read_text()
        status, body = get(port, "/Tom")
        assert status == 200 and "Hello, Tom!" in body
    finally:
        code = stack.stop(signal.SIGQUIT)
        assert code == 0, stack.output()


def test_signal_without_a_running_stack_says_why(gantry, tmp_path):
    (tmp_path / "gantry.conf").write_text(stack_config(free_port(), locations="location / { return 200; }"))
    result = subprocess.run([str(gantry), "-p", str(tmp_path), "-c", "gantry.conf", "-s", "reload"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert f'open() "{tmp_path}/logs/gantry.pid" failed (2: No such file or directory)' in result.stderr


def test_daemon_on_is_refused(gantry, tmp_path):
    port = free_port()
    stack = Stack(gantry, tmp_path, "daemon on;\n" + stack_config(port, locations="location / { return 200; }"),
                  expect_ready=False)
    assert stack.proc.wait(10) == 1
    assert '"daemon on" is not supported by gantry' in stack.output()
    stack.stop()


def test_requests_wait_for_the_replacement_of_a_single_worker(gantry, tmp_path):
    copy_app(tmp_path)
    port = free_port()
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(workers=1)))
    try:
        pid = int(field(get(port, "/")[1], "pid"))
        import concurrent.futures
        import threading
        stop = threading.Event()

        def client(index):
            # Requests until told to stop (at most 2000 each): load before, during and after the kill.
            answers = []
            for n in range(2000):
                if stop.is_set():
                    break
                answers.append(get(port, f"/load{index}-{n}"))
            return answers

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(client, i) for i in range(4)]
            time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
            time.sleep(1.0)
            stop.set()
            answers = [a for f in futures for a in f.result()]
        # At most the requests the dead worker was running (4 clients) fail; the rest wait for
        # its replacement instead of getting 502 while the pool is empty.
        failures = [a for a in answers if a[0] != 200]
        assert len(failures) <= 4, failures
        assert {field(body, "pid") for status, body in answers if status == 200} - {str(pid)}
    finally:
        stack.stop()


def test_socket_dir_is_taken_against_the_prefix_and_socket_mode_applies(gantry, tmp_path):
    copy_app(tmp_path)
    port = free_port()
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(workers=1, extra="socket_dir run; socket_mode 0660;")))
    try:
        assert get(port, "/")[0] == 200
        sockets = list((tmp_path / "run").glob("app.*.sock"))
        assert len(sockets) == 1
        assert os.stat(sockets[0]).st_mode & 0o777 == 0o660
        assert os.stat(tmp_path / "run").st_mode & 0o777 == 0o700
    finally:
        stack.stop()


@pytest.mark.parametrize("line, message", [
    ("socket_mode 0x;", 'invalid value "0x" in "socket_mode" directive'),
    ("env NOEQUALS;", 'invalid value "NOEQUALS" in "env" directive'),
    ("max_requests_jitter -1;", "\"max_requests_jitter\" directive invalid number"),
])
def test_t_checks_app_pool_values_as_the_stack_reads_them(gantry, tmp_path, line, message):
    config = stack_config(free_port(), pool_block(extra=line))
    (tmp_path / "gantry.conf").write_text(config)
    result = subprocess.run([str(gantry), "-t", "-p", str(tmp_path), "-c", "gantry.conf"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert message in result.stderr
    assert "gantry.conf:" in result.stderr and "test failed" in result.stderr


def post(port, path, data):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read().decode()


@pytest.mark.parametrize("same_thread", [False, True])
def test_same_thread_on_runs_a_workers_requests_on_one_thread(gantry, tmp_path, same_thread):
    copy_app(tmp_path, "worker_apps.py")
    port = free_port()
    extra = "same_thread on;" if same_thread else ""
    stack = Stack(gantry, tmp_path, stack_config(port, pool_block(app="worker_apps:slow", workers=1, extra=extra)))
    try:
        status, without_body = get(port, "/?0")
        assert status == 200, without_body
        with_body = post(port, "/?0", b"x" * 1000)
        # Default: a bodyless request runs on the worker's event loop, one with a body on its
        # Python thread. `same_thread on`: both on the Python thread, as gunicorn's sync worker.
        assert (without_body.split("thread ")[1] == with_body.split("thread ")[1]) == same_thread
    finally:
        stack.stop()


def test_same_thread_with_more_threads_is_refused(gantry, tmp_path):
    port = free_port()
    config = stack_config(port, pool_block(extra="threads 2; same_thread on;"))
    stack = Stack(gantry, tmp_path, config, expect_ready=False)
    assert stack.proc.wait(10) == 1
    assert re.search(r'"same_thread" needs "threads 1".* in .*gantry\.conf:\d+', stack.output()), stack.output()
    stack.stop()
