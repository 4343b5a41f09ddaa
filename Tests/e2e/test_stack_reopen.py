"""`-s reopen` (USR1) for logrotate: the front and every app worker re-open their log files."""
import signal
import time

from conftest import free_port
from stack_support import Stack, copy_app, field, get, pool_block, stack_config
from test_arbiter_wsgi import arbiters, eventually  # noqa: F401 (fixture)


def wait_until(predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_stack_workers_reopen_the_error_log_after_rotation(gantry, tmp_path):
    copy_app(tmp_path)
    port = free_port()
    config = stack_config(port, pool_block(workers=2)).replace("error_log stderr info;", "error_log logs/error.log info;")
    config = config.replace("access_log off;", "access_log logs/access.log;")
    logs = tmp_path / "logs"
    logs.mkdir()
    stack = Stack(gantry, tmp_path, config)
    try:
        workers = {field(get(port, f"/{i}")[1], "pid") for i in range(8)}
        assert len(workers) == 2
        for name in ("access.log", "error.log"):
            (logs / name).rename(logs / (name + ".1"))
        stack.send("reopen", gantry)
        # Each worker says so in the new file (it logs after re-opening).
        assert wait_until(lambda: (logs / "error.log").exists() and all(
            f"[{pid}] [INFO] Handling signal: usr1" in (logs / "error.log").read_text() for pid in workers)), \
            (logs / "error.log").read_text() if (logs / "error.log").exists() else "no new error.log"
        rotated = (logs / "error.log.1").read_text()
        assert "Handling signal: usr1" not in rotated
        # The workers are the same processes (re-opened, not restarted), and still serve.
        assert {field(get(port, f"/after-{i}")[1], "pid") for i in range(8)} == workers
        assert wait_until(lambda: "GET /after-7" in (logs / "access.log").read_text())
        assert "GET /after-" not in (logs / "access.log.1").read_text()
    finally:
        assert stack.stop(signal.SIGQUIT) == 0
    # Later worker lines (here: the graceful stop) land in the new file too.
    text = (logs / "error.log").read_text()
    assert any(f"[{pid}]" in line and "Handling signal" not in line and "Booting" not in line
               for line in text.splitlines() for pid in workers), text
    assert all(f"[{pid}] [INFO] Booting" in (logs / "error.log.1").read_text() for pid in workers)


def test_wsgi_arbiter_forwards_usr1_so_workers_reopen(arbiters, tmp_path):
    log = tmp_path / "error.log"
    arbiter = arbiters("--error-logfile", str(log), "--log-level", "info")
    # With a log file the arbiter prints nothing to stdout: its readiness is in the file.
    assert eventually(lambda: log.exists() and log.read_text().count("Booting worker") == 2, 60), arbiter.log
    assert eventually(lambda: len(arbiter.workers()) == 2, 30)
    workers = arbiter.workers()
    assert len(workers) == 2
    log.rename(tmp_path / "error.log.1")
    arbiter.signal(signal.SIGUSR1)
    assert eventually(lambda: log.exists() and all(
        f"[{pid}] [INFO] Handling signal: usr1" in log.read_text() for pid in workers), 15), \
        log.read_text() if log.exists() else "no new error.log"
    assert sorted(arbiter.workers()) == sorted(workers)
