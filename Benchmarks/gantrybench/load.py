"""Load generation with wrk: one run, its summary as numbers (via a Lua `done` hook)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from . import procs

# wrk calls done() once at the end; it prints the summary as one JSON line.
_DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nWRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
"""

# Rotates over several paths (one per request, per connection in turn).
_PATHS_LUA = r"""
local paths = {%s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, paths[(counter %% #paths) + 1])
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    bytes: int
    errors: int          # non-2xx/3xx responses + socket errors (connect, read, write, timeout)
    status_errors: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    error_kinds: dict  # wrk's counts: status (non-2xx/3xx), connect, read, write, timeout

    def errors_text(self) -> str:
        return ", ".join(f"{kind} {count}" for kind, count in self.error_kinds.items() if count)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "rps": round(self.rps, 1)}


class LoadFailure(Exception):
    pass


def write_script(directory: Path, paths: list[str]) -> Path:
    """A Lua script for wrk: the JSON summary, plus path rotation when there are several."""
    script = directory / ("wrk-" + "-".join(p.strip("/").replace("/", "_") or "root" for p in paths) + ".lua")
    text = _DONE_LUA
    if len(paths) > 1:
        text = _PATHS_LUA % ", ".join(json.dumps(p) for p in paths) + text
    script.write_text(text)
    return script


def run_wrk(wrk: str, url: str, script: Path, connections: int, seconds: float, threads: int,
            log_path: Path, timeout_s: int = 5) -> LoadResult:
    threads = max(1, min(threads, connections))
    duration = max(1, round(seconds))
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", f"--timeout={timeout_s}s",
            "-s", str(script), url]
    log_path.unlink(missing_ok=True)
    process = procs.start("wrk", argv, log_path)
    try:
        process.popen.wait(timeout=duration + timeout_s + 30)
    except subprocess.TimeoutExpired:
        process.stop()
        raise LoadFailure("wrk did not finish in time")
    process.stop()
    text = log_path.read_text(errors="replace")
    summaries = [line for line in text.splitlines() if line.startswith("WRKJSON ")]
    if process.popen.returncode != 0 or not summaries:
        raise LoadFailure(f"wrk failed (code {process.popen.returncode}): {procs.log_reason(log_path)}")
    data = json.loads(summaries[-1][len("WRKJSON "):])
    socket_errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    return LoadResult(
        requests=data["requests"], seconds=data["duration_us"] / 1e6, bytes=data["bytes"],
        errors=data["status"] + socket_errors, status_errors=data["status"], socket_errors=socket_errors,
        p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        p999_ms=data["p999_us"] / 1000, max_ms=data["max_us"] / 1000,
        error_kinds={kind: data[kind] for kind in ("status", "connect", "read", "write", "timeout")})
