"""Getting the tools: nginx and wrk from Debian, the peers from PyPI into Benchmarks/.venv,
Gantry built in release mode. And a description of the machine and versions."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

APT_PACKAGES = {"nginx": "nginx-light", "wrk": "wrk", "openssl": "openssl"}


class SetupError(Exception):
    pass


def _which(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name)
                                       if p.exists()), None)


def ensure_apt_tools(say) -> dict[str, str]:
    """nginx, wrk and openssl paths; installs the Debian package of the one missing."""
    missing = [pkg for tool, pkg in APT_PACKAGES.items() if not _which(tool)]
    if missing:
        if os.geteuid() != 0:
            raise SetupError(f"missing {', '.join(missing)}: run `sudo apt-get install {' '.join(missing)}`")
        say(f"installing {' '.join(missing)} (apt-get) …")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        lock = ["-o", "DPkg::Lock::Timeout=300"]
        for argv in (["apt-get", *lock, "update", "-qq"], ["apt-get", *lock, "install", "-y", "-qq", *missing]):
            for attempt in range(30):  # apt-get update has no lock timeout of its own: retry
                done = subprocess.run(argv, env=env, capture_output=True, text=True)
                if done.returncode == 0 or "Could not get lock" not in done.stderr:
                    break
                time.sleep(10)
            if done.returncode != 0:
                raise SetupError(f"{' '.join(argv)} failed: {done.stderr.strip().splitlines()[-1:]}")
    tools = {tool: _which(tool) for tool in APT_PACKAGES}
    if not all(tools.values()):
        raise SetupError(f"not found after install: {[t for t, p in tools.items() if not p]}")
    return tools


def ensure_venv(bench_dir: Path, say) -> Path:
    """Benchmarks/.venv with requirements.txt installed; reinstalls when the file changes."""
    venv = bench_dir / ".venv"
    requirements = bench_dir / "requirements.txt"
    stamp = venv / ".requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if (venv / "bin" / "python").exists() and stamp.exists() and stamp.read_text() == digest:
        return venv / "bin"
    say("preparing Benchmarks/.venv (gunicorn, granian, flask from PyPI) …")
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           "-r", str(requirements)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"pip install failed: {done.stderr.strip()[-300:]}")
    stamp.write_text(digest)
    return venv / "bin"


def build_gantry(repo: Path, log_path: Path, say) -> tuple[Path | None, str, float]:
    """`swift build -c release`; returns (binary or None, problem, seconds)."""
    say("building Gantry (swift build -c release --product gantry) …")
    started = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            done = subprocess.run(["swift", "build", "-c", "release", "--product", "gantry"], cwd=repo,
                                  stdout=log, stderr=subprocess.STDOUT)
        except OSError as error:
            return None, f"cannot run swift build: {error.strerror}", 0.0
    seconds = time.monotonic() - started
    binary = repo / ".build" / "release" / "gantry"
    if done.returncode != 0:
        lines = log_path.read_text(errors="replace").splitlines()
        errors = [line.strip() for line in lines if "error:" in line] or [l.strip() for l in lines if l.strip()][-1:]
        return None, f"release build failed: {errors[0][:200] if errors else 'no output'}", seconds
    if not binary.exists():
        return None, f"release build left no {binary}", seconds
    return binary, "", seconds


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0].strip() if text else "?"


def machine_info(repo: Path, tools: dict[str, str], venv_bin: Path) -> dict:
    cpu_model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        mem_kib = int(next(l for l in Path("/proc/meminfo").read_text().splitlines()
                           if l.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        mem_kib = 0
    git = lambda *args: subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True).stdout.strip()
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    py = str(venv_bin / "python")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "cpu": cpu_model,
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "gantry_commit": (git("rev-parse", "--short", "HEAD") or "?") + ("+dirty" if dirty else ""),
        "versions": {
            "nginx": _first_line([tools["nginx"], "-v"]).replace("nginx version: nginx/", ""),
            "wrk": _first_line([tools["wrk"], "-v"]).split(" [")[0],
            "python": _first_line([py, "--version"]),
            "gunicorn": _first_line([str(venv_bin / "gunicorn"), "--version"]).replace("(version ", "").rstrip(")"),
            "granian": _first_line([str(venv_bin / "granian"), "--version"]),
            "flask": _first_line([py, "-c", "import importlib.metadata as m; print(m.version('flask'))"]),
            "swift": _first_line(["swift", "--version"]),
        },
    }
