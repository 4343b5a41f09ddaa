"""Tests of the benchmark harness itself (no load, no nginx): targets, tables, chart, configs,
the idle client and process clean-up. Run: python3 -m pytest -q Benchmarks/tests"""

from __future__ import annotations

import http.server
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH_DIR))

from gantrybench import chart, idle, load, procs, report, servers  # noqa: E402
from gantrybench.scenarios import Row  # noqa: E402


def _row(scenario, server, rps=None, p99=None, status="ok", reason="", errors=0, **extra):
    row = Row(scenario, server, server.startswith("gantry"), rps=rps, p99_ms=p99, errors=errors, **extra)
    if status == "failed":
        row.fail(reason)
    return row


def _result(compared, peer, metric):
    return next(c for c in compared if c["peer"] == peer and c["metric"] == metric)


def test_ratio_meets_and_misses_targets():
    rows = [_row("static-1k", "gantry", rps=90, p99=2.0), _row("static-1k", "nginx", rps=100, p99=1.0)]
    compared = report.comparisons(rows)
    assert _result(compared, "nginx", "rps") | {"ratio": 0.9, "result": "PASS"} == _result(compared, "nginx", "rps")
    assert _result(compared, "nginx", "p99_ms")["ratio"] == 2.0
    assert _result(compared, "nginx", "p99_ms")["result"] == "FAIL"


def test_failed_gantry_fails_every_target_and_shows_in_the_table():
    rows = [_row("wsgi-hello", "gantry", status="failed", reason="gantry exited (code 64): Error: Unknown option '-w'"),
            _row("wsgi-hello", "gunicorn", rps=1000, p99=5), _row("wsgi-hello", "granian", rps=9000, p99=1)]
    compared = report.comparisons(rows)
    assert {c["result"] for c in compared} == {"FAIL"}
    table = report.console_table(rows, compared)
    gantry_line = next(line for line in table.splitlines() if line.startswith("wsgi-hello  gantry"))
    assert "FAILED" in gantry_line and "Unknown option '-w'" in gantry_line
    assert "| **FAILED** |" in report.markdown_table(rows, compared)


def test_failed_peer_makes_the_target_not_measurable():
    rows = [_row("stack", "gantry", rps=100), _row("stack", "nginx→gunicorn", status="failed", reason="x"),
            _row("stack", "nginx→granian", rps=100)]
    compared = report.comparisons(rows)
    assert _result(compared, "nginx→gunicorn", "rps")["result"] == "n/a"
    assert _result(compared, "nginx→granian", "rps")["result"] == "PASS"


def test_reload_requires_zero_errors_from_gantry():
    rows = [_row("reload", "gantry", rps=100, errors=3), _row("reload", "nginx→granian", rps=100, errors=40)]
    entry = next(c for c in report.comparisons(rows) if c["metric"] == "errors")
    assert (entry["ratio"], entry["result"]) == (3, "FAIL")


def test_chart_is_valid_svg_and_names_a_failed_server():
    nginx = _row("curve-static", "nginx", curve=[{"connections": c, "rps": 1000.0 * c, "p99_ms": 0.5 * c,
                                                  "status": "ok"} for c in (1, 16, 256)])
    gantry = _row("curve-static", "gantry", status="failed", reason="did not start",
                  curve=[{"connections": 1, "status": "failed", "reason": "did not start"}])
    svg = chart.render_svg([gantry, nginx], "caption")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "FAILED" in svg and "polyline" in svg


def test_log_reason_prefers_the_error_line(tmp_path):
    log = tmp_path / "server.log"
    log.write_text("$ gantry wsgi -w 2\nError: Unknown option '-w'\nUsage: gantry wsgi\n  See 'gantry wsgi --help'\n")
    assert procs.log_reason(log) == "Error: Unknown option '-w'"
    log.write_text("$ x\nstarting\nlistening\n")
    assert procs.log_reason(log) == "listening"


@pytest.mark.parametrize("template", sorted(p.name for p in (BENCH_DIR / "configs").glob("*.conf")))
def test_every_config_template_fills_completely(tmp_path, template):
    env = servers.Env(bench_dir=BENCH_DIR, work=tmp_path, nginx="nginx", wrk="wrk", venv_bin=tmp_path,
                      gantry=None, gantry_problem="", workers=2, app_workers=2)
    values = dict(WORKERS=2, APP_WORKERS=2, PORT=8080, DOCROOT=tmp_path, APPS=tmp_path, PYTHON="python3",
                  UPSTREAM_SOCK=tmp_path / "u.sock", APP_SOCK=tmp_path / "a.sock", TLS_CERT=tmp_path / "c.pem",
                  TLS_KEY=tmp_path / "k.pem")
    text = servers.render(env, template, template, **values).read_text()
    assert "{{" not in text and text.count("{") == text.count("}")


def test_unfilled_placeholder_is_an_error(tmp_path):
    env = servers.Env(bench_dir=BENCH_DIR, work=tmp_path, nginx="nginx", wrk="wrk", venv_bin=tmp_path,
                      gantry=None, gantry_problem="", workers=2, app_workers=2)
    with pytest.raises(ValueError):
        servers.render(env, "static.conf", "x.conf", WORKERS=2)


def test_wrk_script_rotates_paths_only_when_several(tmp_path):
    assert "request = function" not in load.write_script(tmp_path, ["/a"]).read_text()
    text = load.write_script(tmp_path, ["/", "/static/1k.bin"]).read_text()
    assert '"/static/1k.bin"' in text and "done = function" in text


class _KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_idle_client_holds_keep_alive_connections():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen = []
    try:
        result = idle.hold_idle_connections(server.server_address[1], "/", 20, lambda: seen.append(True))
    finally:
        server.shutdown()
        server.server_close()
    assert (result.opened, result.failed, result.still_open) == (20, 0, 20)
    assert seen == [True]


def test_stop_kills_the_whole_tree(tmp_path):
    process = procs.start("tree", ["sh", "-c", "sleep 60 & sleep 60 & wait"], tmp_path / "tree.log")
    deadline = time.monotonic() + 5
    while len(procs.descendants(process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    children = procs.descendants(process.pid)
    assert len(children) == 2
    rss, _, count = procs.tree_memory_kib([process.pid])
    assert rss > 0 and count == 3
    process.stop(grace=1)

    def dead(pid: int) -> bool:  # gone, or a zombie waiting for whoever adopted it
        try:
            return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except OSError:
            return True
    deadline = time.monotonic() + 3
    while not all(dead(pid) for pid in [process.pid, *children]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(dead(pid) for pid in [process.pid, *children])


def _built_gantry() -> Path | None:
    for kind in ("debug", "release"):
        binary = BENCH_DIR.parent / ".build" / kind / "gantry"
        if binary.exists():
            return binary
    return None


@pytest.mark.parametrize("template", ["static.conf", "static-tls.conf", "proxy.conf", "proxy-keepalive.conf",
                                      "stack-gantry.conf"])
def test_gantry_accepts_every_config_it_is_given(tmp_path, template):
    """The benchmark's configs stay in step with Gantry's directive table (`gantry -t`)."""
    import subprocess
    gantry = _built_gantry()
    if gantry is None:
        pytest.skip("no built gantry (swift build)")
    env = servers.Env(bench_dir=BENCH_DIR, work=tmp_path, nginx="nginx", wrk="wrk", venv_bin=BENCH_DIR / ".venv" / "bin",
                      gantry=None, gantry_problem="", workers=2, app_workers=2)
    (tmp_path / "www").mkdir()
    (tmp_path / "tls").mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-keyout", str(env.tls_key), "-out", str(env.tls_cert)],
                   check=True, capture_output=True)
    conf = servers.render(env, template, template, WORKERS=2, APP_WORKERS=2, PORT=18080, DOCROOT=tmp_path / "www",
                          APPS=env.apps, PYTHON=sys.executable, UPSTREAM_SOCK=tmp_path / "u.sock",
                          TLS_CERT=env.tls_cert, TLS_KEY=env.tls_key)
    done = subprocess.run([str(gantry), "-t", "-c", str(conf)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
