"""Started as root: bind a port below 1024, then run the front and the workers as `user`."""
import os
import pathlib
import pwd
import shutil
import signal
import socket
import stat
import tempfile
import urllib.error
import urllib.request

import pytest

from stack_support import Stack, APPS, field, get, pool_block, stack_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (binds a port below 1024, switches user)")


def free_privileged_port():
    for port in range(980, 1020):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port below 1024")


def uid_of(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])


def test_root_binds_a_low_port_then_everything_runs_as_the_user(gantry):
    nobody = pwd.getpwnam("nobody")
    # A directory the unprivileged user can read (pytest's tmp_path is root's, mode 0700).
    directory = pathlib.Path(tempfile.mkdtemp(prefix="gantry-stack-priv-"))
    os.chmod(directory, 0o755)
    try:
        shutil.copy(APPS / "stack_app.py", directory / "stack_app.py")
        os.chmod(directory / "stack_app.py", 0o644)
        port = free_privileged_port()
        stack = Stack(gantry, directory, "user nobody nogroup;\n" + stack_config(port, pool_block(workers=2)))
        try:
            assert uid_of(stack.proc.pid) == nobody.pw_uid
            pids = {field(get(port, f"/{i}")[1], "pid") for i in range(10)}
            assert len(pids) == 2
            for pid in pids:
                assert uid_of(int(pid)) == nobody.pw_uid
            # The workers' sockets: in a directory only that user can enter.
            socket_dirs = list(pathlib.Path("/tmp").glob(f"gantry-{stack.proc.pid}-*"))
            assert len(socket_dirs) == 1
            info = os.stat(socket_dirs[0])
            assert info.st_uid == nobody.pw_uid and stat.S_IMODE(info.st_mode) == 0o700
            # The proxy's temp directories: made by root at start and given to the user, as nginx's
            # master does, so a request body past client_body_buffer_size can be stored.
            for name in ("proxy_temp", "client_body_temp"):
                info = os.stat(directory / name)
                assert info.st_uid == nobody.pw_uid and stat.S_IMODE(info.st_mode) == 0o700, name
            body = b"b" * (1 << 20)
            request = urllib.request.Request(f"http://127.0.0.1:{port}/upload", data=body, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    assert response.status == 200
            except urllib.error.HTTPError as error:
                raise AssertionError(f"{error}: {stack.output()[-3000:]}")
        finally:
            assert stack.stop(signal.SIGQUIT) == 0
        assert not (directory / "logs" / "gantry.pid").exists()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
