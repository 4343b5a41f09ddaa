"""Processes the benchmark starts: launch in their own process group, wait until ready,
sample the memory of their whole process tree, and always stop them.

Every process started here is recorded in `_LIVE`; `stop_all()` (called from the runner's
`finally`, on SIGINT/SIGTERM/SIGHUP too) kills each one's process group and any
descendant that left it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

_LIVE: list["Process"] = []


class StartFailure(Exception):
    """A server did not come up; the message is the reason shown in the table."""


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, grace: float = 5.0) -> None:
        """TERM the process group, wait, then KILL the group and every stray descendant."""
        tree = descendants(self.pid) if self.alive() else []
        _signal_group(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(self.pid, signal.SIGKILL)
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self in _LIVE:
            _LIVE.remove(self)

    def failure_reason(self) -> str:
        """The most telling line of the process's output, for the table."""
        return log_reason(self.log_path)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start(name: str, argv: list[str], log_path: Path, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> Process:
    """Start argv in a new session (its own process group), stdout+stderr to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    log.write(f"$ {' '.join(argv)}\n".encode())
    log.flush()
    try:
        popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 cwd=cwd, env=env, start_new_session=True)
    except OSError as error:
        raise StartFailure(f"cannot run {argv[0]}: {error.strerror}") from error
    finally:
        log.close()
    process = Process(name, popen, log_path)
    _LIVE.append(process)
    return process


def stop_all() -> None:
    for process in list(reversed(_LIVE)):
        process.stop(grace=2.0)


def log_reason(log_path: Path, limit: int = 180) -> str:
    try:
        lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()]
    except OSError:
        return "no output"
    lines = [line for line in lines if line and not line.startswith("$ ")]
    if not lines:
        return "no output"
    strong = ("emerg", "error", "fatal", "exception", "not supported", "not implemented", "traceback")
    telling = [line for line in lines if any(word in line.lower() for word in strong)]
    line = (telling or lines)[-1]
    return line if len(line) <= limit else line[: limit - 1] + "…"


# --- readiness -------------------------------------------------------------------------

def wait_ready(process: Process, check, timeout: float, what: str) -> None:
    """Poll `check()` until it is true; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            code = process.popen.returncode
            raise StartFailure(f"{process.name} exited (code {code}) before {what}: {process.failure_reason()}")
        if check():
            return
        time.sleep(0.1)
    raise StartFailure(f"{process.name} not {what} within {timeout:.0f} s; last output: {process.failure_reason()}")


def tcp_accepting(port: int, host: str = "127.0.0.1"):
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    return check


def unix_accepting(path: Path):
    def check() -> bool:
        if not path.exists():
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(str(path))
                return True
            except OSError:
                return False
    return check


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all held open while choosing, so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# --- memory of a process tree ------------------------------------------------------------

def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # Fields after the command (which may hold spaces) start after the last ')'.
        rest = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(rest[1]), []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    children = _children_map()
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def tree_memory_kib(roots: list[int]) -> tuple[int, int, int]:
    """(RSS, PSS, process count) summed over roots and all their descendants, in KiB.

    RSS counts a page shared by several processes once per process (forking servers look
    bigger); PSS splits it between them. Both are recorded; the table shows RSS.
    """
    children = _children_map()
    pids, stack = [], list(roots)
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, []))
    rss = pss = count = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                        count += 1
                        break
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue
    return rss, pss, count


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU time (user + system, with reaped children) used so far by roots and their descendants.

    The difference over a run, divided by its requests, is the server's CPU cost per request:
    steadier than req/s when other work shares the machine."""
    children = _children_map()
    pids, stack = [], list(roots)
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, []))
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class MemorySampler:
    """Samples a server's tree memory in a thread; keeps the peaks."""
    roots: list[int]
    interval: float = 0.25
    peak_rss_kib: int = 0
    peak_pss_kib: int = 0
    peak_processes: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> tuple[int, int, int]:
        rss, pss, count = tree_memory_kib(self.roots)
        self.peak_rss_kib = max(self.peak_rss_kib, rss)
        self.peak_pss_kib = max(self.peak_pss_kib, pss)
        self.peak_processes = max(self.peak_processes, count)
        return rss, pss, count

    def start(self) -> "MemorySampler":
        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.sample()
        self.sample()
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def reset(self) -> None:
        self.peak_rss_kib = self.peak_pss_kib = self.peak_processes = 0

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
