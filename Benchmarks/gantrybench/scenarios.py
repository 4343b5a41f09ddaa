"""The scenarios: which servers, which load, which targets — and how each kind is measured."""

from __future__ import annotations

import shlex
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import idle, load, procs, servers
from .servers import Env, ServerSpec


@dataclass
class Target:
    """Gantry's figure ÷ the peer's must satisfy `op value` (rps higher is better, p99 lower)."""
    peer: str
    metric: str          # "rps" | "p99_ms" | "rss_mib"
    op: str | None       # ">=" | "<=" | None (reported, no target)
    value: float | None = None
    gantry: str = "gantry"  # which Gantry row (a scenario may hold two)


@dataclass
class Timing:
    warmup: float
    seconds: float
    repeats: int
    threads: int
    curve_levels: list[int]
    curve_warmup: float
    curve_seconds: float
    reload_seconds: float
    reload_at: list[float]
    idle_connections: int


@dataclass
class Scenario:
    name: str
    title: str
    kind: str                                   # load | curve | reload | idle
    make_servers: Callable[[Env, Path | None], list[ServerSpec]]
    paths: list[str]
    connections: int = 32
    targets: list[Target] = field(default_factory=list)
    needs_upstream: bool = False


@dataclass
class Row:
    """One server in one scenario: the line of the table."""
    scenario: str
    server: str
    is_gantry: bool
    status: str = "ok"          # ok | failed
    reason: str = ""
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int | None = None
    requests: int | None = None
    rss_mib: float | None = None
    pss_mib: float | None = None
    processes: int | None = None
    cpu_us_per_request: float | None = None
    note: str = ""
    commands: list[str] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)
    idle: dict = field(default_factory=dict)

    def fail(self, reason: str) -> "Row":
        self.status, self.reason = "failed", reason
        return self


def _small(env, _):
    return servers.static_servers(env, [servers.Probe(f"/{servers.SMALL_FILE}", length=servers.SMALL_SIZE)])


def _large(env, _):
    return servers.static_servers(env, [servers.Probe(f"/{servers.LARGE_FILE}", length=servers.LARGE_SIZE)])


def _relabel_gantry(specs: list[ServerSpec], label: str) -> list[ServerSpec]:
    for spec in specs:
        if spec.is_gantry:
            spec.label = label
    return specs


def _rps_08_p99_15(peer: str) -> list[Target]:
    """The front's and the proxy's targets: ≥ 0.8× the peer's req/s, p99 no worse than 1.5×."""
    return [Target(peer, "rps", ">=", 0.8), Target(peer, "p99_ms", "<=", 1.5)]

SCENARIOS: list[Scenario] = [
    Scenario("static-1k", "Static file, 1 KiB, keep-alive, 32 connections", "load", _small,
             [f"/{servers.SMALL_FILE}"], targets=_rps_08_p99_15("nginx")),
    Scenario("static-1m", "Static file, 1 MiB (throughput), keep-alive, 32 connections", "load", _large,
             [f"/{servers.LARGE_FILE}"], targets=[Target("nginx", "rps", ">=", 1.0), Target("nginx", "p99_ms", "<=", 1.5)]),
    Scenario("static-tls", "Static file, 1 KiB, over TLS (keep-alive), 32 connections", "load",
             lambda env, _: servers.static_servers(env, [servers.Probe(f"/{servers.SMALL_FILE}", length=servers.SMALL_SIZE)],
                                                   "static-tls.conf", tls=True),
             [f"/{servers.SMALL_FILE}"], targets=[Target("nginx", "rps", None), Target("nginx", "p99_ms", None)]),
    Scenario("proxy", "Reverse proxy to a Unix-socket upstream (seed block, new upstream connection per request)",
             "load", lambda env, sock: servers.proxy_servers(env, "proxy.conf", sock), ["/"],
             targets=_rps_08_p99_15("nginx"), needs_upstream=True),
    Scenario("proxy-keepalive", "Reverse proxy to the same upstream, `upstream` with `keepalive 32`",
             "load", lambda env, sock: servers.proxy_servers(env, "proxy-keepalive.conf", sock), ["/"],
             targets=_rps_08_p99_15("nginx"), needs_upstream=True),
    Scenario("wsgi-hello", "WSGI hello world, app server alone, 2 workers", "load",
             lambda env, _: servers.wsgi_servers(env, "hello:app", servers.HELLO), ["/"],
             targets=[Target("gunicorn", "rps", ">=", 5.0), Target("granian", "rps", ">=", 0.8)]),
    Scenario("wsgi-flask", "Flask hello world, app server alone, 2 workers", "load",
             lambda env, _: servers.wsgi_servers(env, "flaskapp:app", servers.HELLO), ["/"],
             targets=[Target("gunicorn", "rps", None), Target("granian", "rps", None)]),
    Scenario("stack", "Whole stack: static 1 KiB + proxied WSGI hello world (alternating), 2 app workers",
             "load", lambda env, _: servers.stack_servers(env), ["/", f"/static/{servers.SMALL_FILE}"],
             targets=[Target("nginx→granian", "rps", ">=", 1.0), Target("nginx→gunicorn", "rps", ">=", 3.0)]),
    Scenario("reload", "Whole stack under load, reloaded (SIGHUP) during the run: errors must be 0", "reload",
             lambda env, _: servers.stack_servers(env), ["/", f"/static/{servers.SMALL_FILE}"],
             targets=[Target("nginx→granian", "rps", None), Target("nginx→gunicorn", "rps", None)]),
    Scenario("wsgi-reload", "WSGI app server alone under load, reloaded (SIGHUP to the arbiter): errors must be 0",
             "reload", lambda env, _: servers.wsgi_servers(env, "hello:app", servers.HELLO), ["/"],
             targets=[Target("gunicorn", "rps", None), Target("granian", "rps", None)]),
    Scenario("curve-static", "Concurrency curve, static 1 KiB", "curve", _small, [f"/{servers.SMALL_FILE}"]),
    Scenario("curve-stack", "Concurrency curve, whole stack (static + app, alternating)", "curve",
             lambda env, _: servers.stack_servers(env), ["/", f"/static/{servers.SMALL_FILE}"]),
    Scenario("idle", "Idle keep-alive connections (one request each, then idle): memory of each server's process tree",
             "idle", lambda env, _: _small(env, None) + _relabel_gantry(servers.stack_servers(env), "gantry stack"),
             [f"/{servers.SMALL_FILE}"],
             targets=[Target("nginx", "rss_mib", None), Target("nginx→gunicorn", "rss_mib", None, gantry="gantry stack"),
                      Target("nginx→granian", "rss_mib", None, gantry="gantry stack")]),
]

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


# --- measuring ---------------------------------------------------------------------------------

def _mib(kib: int) -> float:
    return round(kib / 1024, 1)


def _check_alive(server: servers.RunningServer) -> None:
    dead = server.dead_reason()
    if dead:
        raise procs.StartFailure(dead)


def _error_rate_problem(errors: int, requests: int) -> str:
    if requests == 0:
        return "no request completed"
    if errors > 0.01 * (requests + errors):
        return f"{errors} errors under load ({100 * errors / (requests + errors):.1f}%)"
    return ""


class LoadMeasurement:
    """One server's share of an interleaved load scenario: its warm-up, then one measured run per
    round (every server runs once per round, in turn, so that a machine getting busier or quieter
    during the scenario weighs on each server alike), then its row."""

    def __init__(self, env: Env, scenario: Scenario, server: servers.RunningServer, row: Row, timing: Timing,
                 script: Path):
        self.env, self.scenario, self.server, self.row, self.timing, self.script = (
            env, scenario, server, row, timing, script)
        self.url = server.spec.url_base + scenario.paths[0]
        self.log = env.work / "logs" / f"wrk-{scenario.name}-{server.spec.label.replace('→', '-')}.log"
        self.roots = [p.pid for p in server.processes]
        self.results: list[load.LoadResult] = []
        self.cpu_seconds = 0.0

    def warm_up(self) -> None:
        load.run_wrk(self.env.wrk, self.url, self.script, self.scenario.connections, self.timing.warmup,
                     self.timing.threads, self.log)
        _check_alive(self.server)
        self.server.sampler.reset()

    def measured_run(self) -> None:
        """One measured run; its CPU time alone is counted (the others idle meanwhile)."""
        cpu_before = procs.tree_cpu_seconds(self.roots)
        result = load.run_wrk(self.env.wrk, self.url, self.script, self.scenario.connections, self.timing.seconds,
                              self.timing.threads, self.log)
        self.cpu_seconds += procs.tree_cpu_seconds(self.roots) - cpu_before
        self.results.append(result)
        self.row.runs.append(result.as_dict())  # kept in the JSON even if the server dies on the next check
        _check_alive(self.server)

    def finish(self) -> None:
        row, results = self.row, self.results
        self.server.sampler.sample()
        row.cpu_us_per_request = round(self.cpu_seconds * 1e6 / max(1, sum(r.requests for r in results)), 1)
        row.rps = round(statistics.median(r.rps for r in results), 1)
        row.p50_ms = round(statistics.median(r.p50_ms for r in results), 3)
        row.p99_ms = round(statistics.median(r.p99_ms for r in results), 3)
        row.errors = sum(r.errors for r in results)
        row.requests = sum(r.requests for r in results)
        if self.scenario.name == "static-1m":
            row.note = f"{statistics.median(r.bytes / r.seconds for r in results) / 2**30:.2f} GiB/s"
        problem = _error_rate_problem(row.errors, row.requests)
        if problem:
            row.fail(problem)
        if row.errors:
            kinds: dict[str, int] = {}
            for result in results:
                for kind, count in result.error_kinds.items():
                    kinds[kind] = kinds.get(kind, 0) + count
            row.note = (row.note + "; " if row.note else "") + "errors: " + ", ".join(
                f"{kind} {count}" for kind, count in kinds.items() if count)


def measure_curve(env: Env, scenario: Scenario, server: servers.RunningServer, row: Row, timing: Timing,
                  script: Path) -> None:
    url = server.spec.url_base + scenario.paths[0]
    log = env.work / "logs" / f"wrk-{scenario.name}-{server.spec.label.replace('→', '-')}.log"
    server.sampler.reset()
    for level in timing.curve_levels:
        point = {"connections": level}
        try:
            _check_alive(server)
            load.run_wrk(env.wrk, url, script, level, timing.curve_warmup, timing.threads, log)
            result = load.run_wrk(env.wrk, url, script, level, timing.curve_seconds, timing.threads, log)
            point.update(rps=round(result.rps, 1), p50_ms=round(result.p50_ms, 3), p99_ms=round(result.p99_ms, 3),
                         errors=result.errors, requests=result.requests, status="ok")
            problem = _error_rate_problem(result.errors, result.requests)
            if problem:
                point.update(status="failed", reason=problem)
        except (procs.StartFailure, load.LoadFailure) as error:
            point.update(status="failed", reason=str(error))
        row.curve.append(point)
    server.sampler.sample()
    ok = [p for p in row.curve if p["status"] == "ok"]
    if not ok:
        row.fail(row.curve[0].get("reason", "no level completed") if row.curve else "no level")
    else:
        best = max(ok, key=lambda p: p["rps"])
        row.rps, row.p99_ms = best["rps"], best["p99_ms"]
        row.errors = sum(p.get("errors", 0) for p in row.curve)
        row.note = f"peak at {best['connections']} connections"
        failed = [str(p["connections"]) for p in row.curve if p["status"] != "ok"]
        if failed:
            row.fail(f"failed at {', '.join(failed)} connections: "
                     + next(p["reason"] for p in row.curve if p["status"] != "ok"))


def measure_reload(env: Env, scenario: Scenario, server: servers.RunningServer, row: Row, timing: Timing,
                   script: Path) -> None:
    url = server.spec.url_base + scenario.paths[0]
    log = env.work / "logs" / f"wrk-{scenario.name}-{server.spec.label.replace('→', '-')}.log"
    load.run_wrk(env.wrk, url, script, scenario.connections, min(timing.warmup, 1), timing.threads, log)
    server.sampler.reset()
    outcome: dict = {}

    def loader() -> None:
        try:
            outcome["result"] = load.run_wrk(env.wrk, url, script, scenario.connections, timing.reload_seconds,
                                             timing.threads, log)
        except load.LoadFailure as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=loader)
    started = time.monotonic()
    thread.start()
    for at in timing.reload_at:
        time.sleep(max(0.0, started + at - time.monotonic()))
        server.reload()
    thread.join()
    if "error" in outcome:
        row.fail(outcome["error"])
        return
    result: load.LoadResult = outcome["result"]
    row.runs = [result.as_dict()]
    row.rps, row.p50_ms, row.p99_ms = round(result.rps, 1), round(result.p50_ms, 3), round(result.p99_ms, 3)
    row.errors, row.requests = result.errors, result.requests
    row.note = f"{len(timing.reload_at)} reloads (HUP at {', '.join(f'{t:g}' for t in timing.reload_at)} s)"
    dead = server.dead_reason()
    problem = dead or servers.probe_all(server.spec.port, server.spec.probes, server.spec.tls)
    if problem:
        row.fail(f"after the reloads: {problem}")
    else:
        problem = _error_rate_problem(result.errors, result.requests)
        if problem:
            row.fail(problem)
    if result.errors:
        row.note += f"; {result.errors} failed requests ({result.errors_text()})"


def measure_idle(env: Env, scenario: Scenario, server: servers.RunningServer, row: Row, timing: Timing,
                 script: Path) -> None:
    time.sleep(0.5)
    baseline_rss, baseline_pss, _ = server.sampler.sample()
    server.sampler.reset()
    count = timing.idle_connections
    path = server.spec.probes[-1].path  # a static file: the front holds the connection

    def while_idle() -> None:
        for _ in range(8):
            server.sampler.sample()
            time.sleep(0.25)

    result = idle.hold_idle_connections(server.spec.port, path, count, while_idle)
    row.rss_mib, row.pss_mib = _mib(server.sampler.peak_rss_kib), _mib(server.sampler.peak_pss_kib)
    per_conn = (server.sampler.peak_rss_kib - baseline_rss) / max(1, result.opened)
    row.idle = {"connections": count, "opened": result.opened, "still_open": result.still_open,
                "failed": result.failed, "first_error": result.first_error,
                "baseline_rss_mib": _mib(baseline_rss), "baseline_pss_mib": _mib(baseline_pss),
                "rss_per_connection_kib": round(per_conn, 2)}
    row.note = (f"{result.still_open}/{count} idle open; baseline {_mib(baseline_rss)} MiB, "
                f"+{per_conn:.1f} KiB/conn")
    _check_alive(server)
    if result.opened < 0.99 * count:
        row.fail(f"only {result.opened} of {count} connections answered ({result.first_error})")
    elif result.still_open < 0.99 * count:
        row.fail(f"server closed {count - result.still_open} of {count} idle connections")


def _generic(env: Env, text: str) -> str:
    """Scratch and repository paths made generic, as the docs show them."""
    return (text.replace(str(env.work), "$WORK").replace(str(env.bench_dir.parent) + "/", "")
            .replace(str(env.bench_dir.parent), "."))


def _shown(env: Env, argv: list[str]) -> str:
    return _generic(env, shlex.join(argv))


# Load scenarios are measured interleaved (LoadMeasurement); these one server at a time.
MEASURE = {"curve": measure_curve, "reload": measure_reload, "idle": measure_idle}


SERVER_COUNT = {"static-1k": 2, "static-1m": 2, "static-tls": 2, "proxy": 2, "proxy-keepalive": 2, "curve-static": 2, "idle": 5}


def estimated_seconds(scenario: Scenario, timing: Timing) -> float:
    """A rough duration (start/stop included) so that a run can say how long it will take."""
    servers_ = SERVER_COUNT.get(scenario.name, 3)
    per_server = {
        "load": timing.warmup + timing.repeats * (timing.seconds + 0.2) + 1,
        "reload": 1 + timing.reload_seconds + 1.5,
        "curve": len(timing.curve_levels) * (timing.curve_warmup + timing.curve_seconds + 0.3) + 1,
        "idle": timing.idle_connections / 2000 + 3,
    }[scenario.kind]
    return servers_ * per_server


def run_scenario(env: Env, scenario: Scenario, timing: Timing, say: Callable[[str], None],
                 only: set[str] | None, rows: list[Row]) -> None:
    """Run every server of a scenario, appending to `rows`; a failure becomes a failed row, never a
    gap (an interruption too: the rows in progress say so). Load scenarios interleave their
    servers' measured runs; the others measure one server after the other."""
    upstream_processes: list[procs.Process] = []
    upstream_sock = None
    try:
        if scenario.needs_upstream:
            step, upstream_sock = servers.upstream_fixture(env)
            try:
                upstream_processes = servers.start_steps(env, [step], f"{scenario.name}-upstream")
            except procs.StartFailure as error:
                specs = scenario.make_servers(env, upstream_sock)
                rows += [Row(scenario.name, s.label, s.is_gantry).fail(f"upstream fixture: {error}") for s in specs]
                return
        specs = scenario.make_servers(env, upstream_sock)
        script = load.write_script(env.work, scenario.paths)
        chosen = [spec for spec in specs if not only or only & set(spec.label.replace("→", " ").split())]
        if scenario.kind == "load":
            _run_interleaved(env, scenario, timing, say, chosen, rows, script)
        else:
            for spec in chosen:
                _run_alone(env, scenario, timing, say, spec, rows, script)
    finally:
        for process in upstream_processes:
            process.stop()


def _new_row(env: Env, scenario: Scenario, spec: ServerSpec, rows: list[Row]) -> Row:
    row = Row(scenario.name, spec.label, spec.is_gantry, commands=[_shown(env, s.argv) for s in spec.steps])
    rows.append(row)
    return row


def _record_and_stop(server: servers.RunningServer, row: Row) -> None:
    server.sampler.sample()
    if row.rss_mib is None:
        row.rss_mib = _mib(server.sampler.peak_rss_kib)
        row.pss_mib = _mib(server.sampler.peak_pss_kib)
    row.processes = server.sampler.peak_processes
    server.stop()


def _say_row(env: Env, scenario: Scenario, row: Row, say: Callable[[str], None]) -> None:
    row.reason = _generic(env, row.reason)
    say(f"  {scenario.name}: {row.server}: " + (f"FAILED — {row.reason}" if row.status == "failed"
                                                else f"{row.rps or 0:,.0f} req/s" if row.rps is not None
                                                else row.note))


def _guarded(row: Row, action: Callable[[], None]) -> None:
    """Runs one step of a server's measurement; what goes wrong becomes the row's failure."""
    try:
        action()
    except (procs.StartFailure, load.LoadFailure) as error:
        row.fail(str(error))
    except Exception as error:  # a fault of the benchmark itself: still a row, with the reason
        row.fail(f"benchmark error: {type(error).__name__}: {error}")


def _run_alone(env: Env, scenario: Scenario, timing: Timing, say: Callable[[str], None], spec: ServerSpec,
               rows: list[Row], script: Path) -> None:
    row = _new_row(env, scenario, spec, rows)
    say(f"  {scenario.name}: {spec.label} …")
    server = None

    def measure() -> None:
        nonlocal server
        server = servers.start_server(env, spec, scenario.name)
        MEASURE[scenario.kind](env, scenario, server, row, timing, script)

    try:
        _guarded(row, measure)
    except KeyboardInterrupt:
        row.fail("interrupted")
        raise
    finally:
        if server is not None:
            _record_and_stop(server, row)
    _say_row(env, scenario, row, say)


def _run_interleaved(env: Env, scenario: Scenario, timing: Timing, say: Callable[[str], None],
                     specs: list[ServerSpec], rows: list[Row], script: Path) -> None:
    """Every server up at once (idle ones cost no CPU), warmed up in turn, then `repeats` rounds
    of one measured run each: slow drift of the machine's load cannot favour whichever server
    happened to run first."""
    measurements: list[LoadMeasurement] = []
    scenario_rows = [_new_row(env, scenario, spec, rows) for spec in specs]
    try:
        for spec, row in zip(specs, scenario_rows):
            say(f"  {scenario.name}: {spec.label} starting …")

            def start(spec: ServerSpec = spec, row: Row = row) -> None:
                server = servers.start_server(env, spec, scenario.name)
                measurements.append(LoadMeasurement(env, scenario, server, row, timing, script))

            _guarded(row, start)
        steps: list[Callable[[LoadMeasurement], None]] = [LoadMeasurement.warm_up]
        steps += [LoadMeasurement.measured_run] * timing.repeats
        for round_number, step in enumerate(steps):
            if round_number > 0:
                say(f"  {scenario.name}: round {round_number} of {timing.repeats}")
            for measurement in measurements:
                if measurement.row.status == "ok":
                    _guarded(measurement.row, lambda m=measurement, s=step: s(m))
        for measurement in measurements:
            if measurement.row.status == "ok":
                _guarded(measurement.row, measurement.finish)
    except KeyboardInterrupt:
        for row in scenario_rows:
            if row.status == "ok" and row.rps is None:
                row.fail("interrupted")
        raise
    finally:
        for measurement in measurements:
            _record_and_stop(measurement.server, measurement.row)
    for row in scenario_rows:
        _say_row(env, scenario, row, say)
