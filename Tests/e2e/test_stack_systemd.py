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
