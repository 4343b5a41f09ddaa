"""Shared fixtures: locate the built `gantry` binary and run it with real configs."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def gantry_binary() -> pathlib.Path:
    env = os.environ.get("GANTRY_BIN")
    if env:
        return pathlib.Path(env)
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    return pathlib.Path(out) / "gantry"


@pytest.fixture(scope="session")
def gantry() -> pathlib.Path:
    path = gantry_binary()
    assert path.exists(), f"{path} missing: run `swift build` first"
    return path


# --- Running gantry with a config (shared by every e2e area) -----------------------------------

import signal
import socket
import time


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc, sig=signal.SIGTERM, timeout=10.0) -> int:
    """Sends `sig` to a running process and waits for it, killing it past `timeout`."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def wait_for_endpoint(endpoint, proc=None, timeout=15.0):
    """Wait until `endpoint` accepts: ("host", port) for TCP or a unix socket path (str)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if isinstance(endpoint, str):
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(endpoint)
            else:
                family = socket.AF_INET6 if ":" in endpoint[0] else socket.AF_INET
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.connect(endpoint)
            return True
        except OSError:
            time.sleep(0.05)
    return False


class GantryProcess:
    """A running `gantry -c CONFIG`; stopped with SIGTERM (then SIGKILL) at teardown."""

    def __init__(self, binary, config_path, endpoints, cwd, extra_args=()):
        self.config_path = config_path
        self.stderr_path = config_path.with_suffix(".stderr")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([str(binary), "-c", str(config_path), *extra_args], cwd=cwd,
                                     stdout=self._stderr, stderr=subprocess.STDOUT)
        self.endpoints = endpoints
        for endpoint in endpoints:
            if not wait_for_endpoint(endpoint, self.proc):
                self.stop()
                raise AssertionError(f"gantry did not start listening on {endpoint}:\n{self.output()}")

    def output(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=10.0) -> int:
        stop_process(self.proc, sig, timeout)
        self._stderr.close()
        return self.proc.returncode


@pytest.fixture
def start_gantry(gantry, tmp_path):
    """Factory fixture: `start_gantry(config_text, endpoints=[("127.0.0.1", port)])` writes the
    config into tmp_path, runs the real binary with it, waits until every endpoint accepts, and
    stops the process at teardown. Endpoints are ("host", port) tuples or unix socket paths."""
    started = []

    def start(config_text, endpoints, name="gantry.conf", extra_args=()):
        config_path = tmp_path / name
        config_path.write_text(config_text)
        process = GantryProcess(gantry, config_path, endpoints, cwd=tmp_path, extra_args=extra_args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
