"""systemd's Type=notify: READY=1 once every worker imported its app; RELOADING=1/READY=1; STOPPING=1."""
import os
import socket

from conftest import free_port
from stack_support import Stack, copy_app, field, get, pool_block, stack_config


def receive(sock):
    try:
        return sock.recv(4096).decode()
    except socket.timeout:
        return None


def test_readiness_reload_and_stop_are_notified(gantry, tmp_path):
    copy_app(tmp_path)
    notify_path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(notify_path)
        sock.settimeout(30)
        port = free_port()
        stack = Stack(gantry, tmp_path, stack_config(port, pool_block(workers=2)),
                      env={**os.environ, "NOTIFY_SOCKET": notify_path})
        try:
            message = receive(sock)
            assert message is not None and "READY=1" in message and f"MAINPID={stack.proc.pid}" in message
            # Ready means serving: the app answers at once.
            assert get(port, "/")[0] == 200
            before = {field(get(port, f"/{i}")[1], "pid") for i in range(6)}
            stack.send("reload", gantry)
            assert "RELOADING=1" in receive(sock)
            assert "READY=1" in receive(sock)
            # READY=1 again only once the new generation serves.
            after = {field(get(port, f"/{i}")[1], "pid") for i in range(6)}
            assert after and not (after & before)
            assert "reload complete" in stack.output()
        finally:
            stack.stop()
        assert receive(sock) == "STOPPING=1"


def test_reopen_starts_new_log_files_after_rotation(gantry, tmp_path):
    copy_app(tmp_path)
    port = free_port()
    config = stack_config(port, pool_block(workers=1)).replace("error_log stderr info;", "error_log logs/error.log info;")
    config = config.replace("access_log off;", "access_log logs/access.log;")
    (tmp_path / "logs").mkdir()
    stack = Stack(gantry, tmp_path, config)
    try:
        assert get(port, "/before")[0] == 200
        logs = tmp_path / "logs"
        for name in ("access.log", "error.log"):
            (logs / name).rename(logs / (name + ".1"))
        stack.send("reopen", gantry)
        import time
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (logs / "access.log").exists():
            time.sleep(0.05)
        assert get(port, "/after")[0] == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "/after" not in (logs / "access.log").read_text():
            time.sleep(0.1)
        assert "/after" in (logs / "access.log").read_text()
        assert "/before" in (logs / "access.log.1").read_text()
        # The error log is re-created too (the notice itself may land in either file).
        assert (logs / "error.log").exists()
        assert "reopening logs" in (logs / "error.log").read_text() + (logs / "error.log.1").read_text()
    finally:
        stack.stop()
