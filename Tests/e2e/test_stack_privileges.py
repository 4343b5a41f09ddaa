"""Started as root: bind a port below 1024, then run the front and the workers as `user`."""
import grp
import os
import pathlib
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
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


@pytest.fixture
def directory():
    """The app's folder, readable by the unprivileged accounts (pytest's tmp_path is root's, 0700)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="gantry-stack-priv-"))
    os.chmod(path, 0o755)
    shutil.copy(APPS / "stack_app.py", path / "stack_app.py")
    os.chmod(path / "stack_app.py", 0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def uid_of(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])


def test_root_binds_a_low_port_then_everything_runs_as_the_user(gantry, directory):
    nobody = pwd.getpwnam("nobody")
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


POOL_USER = "gantryapp"


def ensure_pool_user():
    """A system account for the pool (created once, idempotently; CI runs as root as this machine does)."""
    try:
        return pwd.getpwnam(POOL_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", POOL_USER],
                       check=True, capture_output=True)
        return pwd.getpwnam(POOL_USER)


def status_field(pid, name):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split()[1:]


def connect_as(user, path):
    """Connects to a Unix socket as another user (in a forked child); "connected" or the error's name."""
    account = pwd.getpwnam(user)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        outcome = b"connected"
        try:
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
        except OSError as error:
            outcome = type(error).__name__.encode()
        os.write(write_end, outcome)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        outcome = reader.read().decode()
    os.waitpid(child, 0)
    return outcome


def test_a_pool_runs_as_its_own_user_started_by_the_privileged_spawner(gantry, directory):
    nobody = pwd.getpwnam("nobody")
    pool_user = ensure_pool_user()
    nogroup = grp.getgrnam("nogroup")
    port = free_privileged_port()
    config = "user nobody nogroup;\n" + stack_config(port, pool_block(workers=2, extra=f"user {POOL_USER};"))
    stack = Stack(gantry, directory, config)
    try:
        master = stack.proc.pid
        # The front: the main user; the spawner: root, a child of the front.
        assert uid_of(master) == nobody.pw_uid
        spawners = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(master), "-f", "gantry spawner"],
                                                       capture_output=True, text=True).stdout.split()]
        assert len(spawners) == 1 and uid_of(spawners[0]) == 0
        # The workers: the pool's user and its group, children of the front (which reaps them).
        pids = {int(field(get(port, f"/{i}")[1], "pid")) for i in range(10)}
        assert len(pids) == 2
        for pid in pids:
            assert status_field(pid, "Uid")[:1] == [str(pool_user.pw_uid)]
            assert status_field(pid, "Gid")[:1] == [str(pool_user.pw_gid)]
            assert status_field(pid, "PPid") == [str(master)]
            ps_user = subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
            assert ps_user == POOL_USER
        # Its sockets: in a directory of the pool's user, entered by the front's group only (which removes dead workers' sockets).
        private = list(pathlib.Path("/tmp").glob(f"gantry-{master}-*"))
        assert len(private) == 1
        pool_dir = private[0] / "app"
        info = os.stat(pool_dir)
        assert (info.st_uid, info.st_gid) == (pool_user.pw_uid, nogroup.gr_gid)
        assert stat.S_IMODE(info.st_mode) == 0o2770
        sockets = sorted(pool_dir.glob("*.sock"))
        assert len(sockets) == 2
        for path in sockets:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
            assert connect_as("daemon", str(path)) == "PermissionError"
        # A killed worker is replaced by the spawner, as its pool's user again.
        victim = next(iter(pids))
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            current = {int(field(get(port, f"/{i}")[1], "pid") or 0) for i in range(6)}
            if victim not in current and len(current - {0}) == 2:
                break
            time.sleep(0.2)
        assert victim not in current and len(current - {0}) == 2
        for pid in current:
            assert status_field(pid, "Uid")[:1] == [str(pool_user.pw_uid)]
    finally:
        # The graceful stop reaches the workers through the spawner; everything exits.
        assert stack.stop(signal.SIGQUIT) == 0
    for pid in current:
        assert not pathlib.Path(f"/proc/{pid}").exists()
    assert not list(pathlib.Path("/tmp").glob(f"gantry-{master}-*"))


def test_a_pool_of_its_own_account_reloads_and_recycles(gantry, directory):
    pool_user = ensure_pool_user()
    port = free_privileged_port()
    config = "user nobody nogroup;\n" + stack_config(
        port, pool_block(workers=2, extra=f"user {POOL_USER}; max_requests 5;"))
    stack = Stack(gantry, directory, config)
    try:
        before = {int(field(get(port, f"/{i}")[1], "pid")) for i in range(4)}
        # -s reload: a new generation, started by the spawner again, serves; the old one drains.
        after_line = len(stack.output())
        stack.proc.send_signal(signal.SIGHUP)
        assert stack.wait_for_output("reload complete", after=after_line), stack.output()
        after = {int(field(get(port, f"/r{i}")[1], "pid")) for i in range(4)}
        assert after and not (after & before)
        # Recycling (max_requests 5) goes through the spawner too; no request fails meanwhile.
        statuses, pids = [], set()
        deadline = time.monotonic() + 30
        while len(pids - after) < 2 and time.monotonic() < deadline:
            status, body = get(port, f"/m{len(statuses)}")
            statuses.append(status)
            pids.add(int(field(body, "pid") or 0))
            time.sleep(0.02)
        assert set(statuses) == {200}
        assert len(pids - after) >= 2, stack.output()[-2000:]
        assert "reached max requests" in stack.output()
        for pid in {int(field(get(port, f"/z{i}")[1], "pid")) for i in range(4)}:
            assert status_field(pid, "Uid")[:1] == [str(pool_user.pw_uid)]
    finally:
        assert stack.stop(signal.SIGQUIT) == 0
    # Nothing of the stack is left: no zombie, no worker.
    leftovers = subprocess.run(["pgrep", "-f", f"gantry-{stack.proc.pid}-"], capture_output=True, text=True).stdout.split()
    assert not leftovers


def test_workers_of_another_account_log_through_the_front_and_follow_reopen(gantry, directory):
    nobody = pwd.getpwnam("nobody")
    ensure_pool_user()
    logs = directory / "logs"
    logs.mkdir()
    os.chown(logs, nobody.pw_uid, -1)  # as logrotate's `create` would leave it for the front's account
    port = free_privileged_port()
    config = "user nobody nogroup;\n" + stack_config(port, pool_block(workers=2, extra=f"user {POOL_USER};")).replace(
        "error_log stderr info;", "error_log logs/error.log info;")
    stack = Stack(gantry, directory, config)
    try:
        workers = {field(get(port, f"/{i}")[1], "pid") for i in range(8)}
        assert len(workers) == 2
        # Their boot lines reached the file, though their account cannot open it.
        text = (logs / "error.log").read_text()
        assert all(f"[{pid}] [INFO] Booting worker" in text for pid in workers), text
        (logs / "error.log").rename(logs / "error.log.1")
        stack.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not (
                (logs / "error.log").exists()
                and all(f"[{pid}] [INFO] Handling signal: usr1" in (logs / "error.log").read_text() for pid in workers)):
            time.sleep(0.05)
        text = (logs / "error.log").read_text() if (logs / "error.log").exists() else ""
        assert all(f"[{pid}] [INFO] Handling signal: usr1" in text for pid in workers), text
        assert "Handling signal: usr1" not in (logs / "error.log.1").read_text()
    finally:
        assert stack.stop(signal.SIGQUIT) == 0


def test_a_reload_may_not_give_a_pool_a_new_account(gantry, directory):
    ensure_pool_user()
    port = free_privileged_port()
    stack = Stack(gantry, directory, "user nobody nogroup;\n" + stack_config(port, pool_block(workers=1)))
    try:
        stack.config.write_text("user nobody nogroup;\n" + stack_config(port, pool_block(workers=1, extra=f"user {POOL_USER};")))
        before = len(stack.output())
        stack.proc.send_signal(signal.SIGHUP)
        assert stack.wait_for_output("needs a restart", after=before)
        assert get(port, "/")[0] == 200
    finally:
        assert stack.stop(signal.SIGQUIT) == 0
