"""Start a real `gantry worker` / `gantry serve` on a free loopback port for e2e tests."""
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

APPS = pathlib.Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Worker:
    """One gantry process; `log` is its stderr (the error log)."""

    def __init__(self, gantry, app, *args, command="worker", bind=True, chdir=APPS, env=None, stdout=None):
        self.port = free_port()
        self.logfile = tempfile.NamedTemporaryFile(prefix="gantry-wsgi-", suffix=".log", delete=False)
        argv = [str(gantry), command, app]
        if chdir is not None:
            argv += ["--chdir", str(chdir)]
        if bind:
            argv += ["-b", f"127.0.0.1:{self.port}"]
        argv += list(args)
        self.argv = argv
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(argv, stdout=stdout or self.logfile, stderr=self.logfile, env=full_env,
                                     pass_fds=getattr(self, "pass_fds", ()))

    def start(self, wait=True):
        if wait and not wait_for_port(self.port, self.proc):
            raise RuntimeError(f"gantry did not start: {self.argv}\n{self.log}")
        return self

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def log(self) -> str:
        return pathlib.Path(self.logfile.name).read_text(errors="replace")

    def wait_log(self, text, timeout=10.0) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log:
                return True
            time.sleep(0.05)
        return False

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.unlink(self.logfile.name)
        except OSError:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def raw_request(port: int, data: bytes, timeout: float = 5.0, read_all=True) -> bytes:
    """Send raw bytes, return everything the server answers until it closes (or times out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_all:
                    break
        except socket.timeout:
            pass
        return b"".join(chunks)
