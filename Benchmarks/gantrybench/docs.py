"""docs/benchmarks.md and the results Markdown, generated from one run's results."""

from __future__ import annotations

from .report import curve_table, markdown_table, summary_line, targets_markdown
from .scenarios import BY_NAME, Row


def _machine(meta: dict) -> str:
    v = meta["versions"]
    load = ", ".join(str(x) for x in meta["load_average_at_start"])
    timing = meta["timing"]
    return "\n".join([
        "| | |", "|---|---|",
        f"| Date | {meta['date']} |",
        f"| Mode | {meta['mode']} ({timing['repeats']}× {timing['seconds']:g} s measured runs after a "
        f"{timing['warmup']:g} s warm-up, median kept; load scenarios in rounds, every server once a round; wrk with {timing['threads']} thread"
        f"{'s' if timing['threads'] > 1 else ''}) |",
        f"| CPU | {meta['cores']} cores, {meta['cpu']} |",
        f"| Memory | {meta['memory_gib']} GiB |",
        f"| Kernel | Linux {meta['kernel']} |",
        f"| Load average at start | {load} |",
        f"| Gantry | {meta.get('gantry', meta['gantry_commit'])} |",
        f"| Command | `{meta.get('command', 'Benchmarks/run')}` |",
        f"| Peers | nginx {v['nginx']} (Debian nginx-light), {v['gunicorn']}, {v['granian']}, Flask {v['flask']} |",
        f"| Tools | {v['wrk']}, {v['python']}, {v['swift']} |",
        f"| Workers | nginx `worker_processes {meta['workers']}` = Gantry `worker_processes {meta['workers']}`; "
        f"app servers {meta['app_workers']} workers (gunicorn `-w`, Granian `--workers`, `gantry wsgi -w`, "
        f"`app_pool` `workers`) |",
        f"| Wall time | {meta.get('wall_seconds', 0) / 60:.1f} min for the scenarios |",
    ])


def _idle_table(rows: list[Row]) -> str:
    idle = [r for r in rows if r.idle or (BY_NAME[r.scenario].kind == "idle")]
    if not idle:
        return ""
    out = ["| Server | Connections held idle | RSS before | RSS with them | per connection | PSS with them | Status |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for r in idle:
        i = r.idle
        if not i:
            out.append(f"| {r.server} | — | — | — | — | — | **FAILED**: {r.reason} |")
            continue
        status = "ok" if r.status == "ok" else f"**FAILED**: {r.reason}"
        out.append(f"| {r.server} | {i['still_open']:,} of {i['connections']:,} | {i['baseline_rss_mib']} MiB | "
                   f"{r.rss_mib} MiB | {i['rss_per_connection_kib']} KiB | {r.pss_mib} MiB | {status} |")
    return "\n".join(out)


def _commands(rows: list[Row]) -> str:
    seen, out = set(), []
    for r in rows:
        for command in r.commands:
            key = (r.server, command)
            if key in seen:
                continue
            seen.add(key)
            out.append(f"- {r.scenario} / {r.server}: `{command}`")
    return "\n".join(out)


METHOD = """\
- **Same work for everyone.** Each scenario starts one server at a time on loopback, with the
  same files, the same worker count and — for Gantry and nginx — **the same config file text**
  (templates in `Benchmarks/configs/`; nginx's only extras, `daemon off; pid …;`, go on its
  command line with `-g`). Access logs are **off for every server** (`access_log off;`; gunicorn
  and Granian log no access by default); `sendfile on` for the static servers.
- **Peers run with their defaults** apart from the worker count, the address, `--log-level
  warning`, and Granian's `--http 1` (every server speaks HTTP/1.1 here). gunicorn runs its
  default `sync` workers, as the seed article deploys it.
- **Load.** `wrk` (keep-alive, HTTP/1.1), 32 connections unless the curve says otherwise; a
  warm-up run is discarded, then the measured runs; the table keeps the median req/s, p50 and
  p99 (wrk's latency histogram, via a Lua `done` hook). The whole-stack scenarios alternate
  requests between the static 1 KiB file and the app (`/`).
- **Errors** = non-2xx/3xx responses + socket errors (connect, read, write, timeout), summed over
  the measured runs. A server that does not start, answers a probe wrongly (status or body),
  dies, or fails more than 1% of requests is shown as **FAILED** with the reason, never left out.
- **Peak RSS** = the highest sum of `VmRSS` over the server's whole process tree (master, workers,
  app processes; for nginx → gunicorn/Granian both trees), sampled every 0.25 s. RSS counts a
  page shared by forked workers once per process; the JSON results also hold PSS, which splits it.
- **CPU µs/req** = CPU time (user + system) the server's process tree spent during the measured
  runs ÷ the requests served: its cost per request, steadier than req/s when other work shares
  the machine.
- **Ratios** are Gantry ÷ the peer named in the row (req/s: higher is better; p99 and RSS: lower).
- **CPU binding.** Given the same `worker_processes 2` on this 2-core machine, Gantry binds its
  two event loops one per core (its default when there is one loop per usable CPU; see
  `docs/architecture.md`), while nginx binds nothing (its default). nginx bound by hand
  (`worker_cpu_affinity auto`) gave the same req/s and a slightly lower p99, so default is
  compared with default.
- **Proxy upstream**: an nginx with one worker answering `return 200` on a Unix socket — the same
  fast upstream for both proxies, not measured itself.
- **Full stack**: Gantry's `app_pool` (2 workers) vs nginx → gunicorn (`-k sync -w 2`) and
  nginx → Granian (`--interface wsgi --workers 2`), both app servers on a **Unix socket**, nginx's
  upstream with `keepalive 32` (gunicorn's sync workers close each connection anyway).
- **Reload**: the stack under load gets SIGHUP at fixed times (Gantry's master; nginx's master
  and the app server's arbiter for the peers); every failed request counts.
- **Idle connections**: a Python asyncio client opens the connections, makes one request on
  each, keeps them idle, and the server's tree memory is sampled; connections the server closed
  are counted.
- **Caveat**: client and servers share the machine's cores, so absolute figures are lower than
  on a dedicated load generator; the ratios are what the project's targets are stated in."""

REPRODUCE = """\
```sh
Benchmarks/run                  # every scenario (under 15 minutes on 2 cores, plus the release build)
Benchmarks/run --quick          # smoke test, about 3 minutes: short runs, fewer levels, 1,000 idle connections
Benchmarks/run static-1k stack  # some scenarios only
Benchmarks/run --write-docs     # … and rewrite this page and its chart
```
It installs what is missing (Debian's `nginx-light` and `wrk`; gunicorn, Granian and Flask into
`Benchmarks/.venv`), builds Gantry with `swift build -c release`, and keeps each run's JSON,
Markdown, chart, configs and server logs under `Benchmarks/results/` (git-ignored).
See `Benchmarks/README.md`."""


def results_markdown(meta: dict, rows: list[Row], compared: list[dict], chart_name: str | None,
                     title: str = "# Benchmarks") -> str:
    parts = [title, ""]
    if meta.get("mode") == "quick" or meta.get("interrupted") or meta.get("partial"):
        parts += [f"> **Note:** this page comes from a {'quick (smoke-test) ' if meta.get('mode') == 'quick' else ''}"
                  f"{'partial ' if meta.get('partial') else ''}{'interrupted ' if meta.get('interrupted') else ''}"
                  "run; its figures are not the project's measurement. Rerun `Benchmarks/run --write-docs`.", ""]
    parts += [
        "Generated by `Benchmarks/run` (the command is below) — "
        "do not edit by hand. Every performance claim of Gantry is a ratio to the tool a user would "
        "otherwise pick, measured side by side in this one run on this one machine.",
        "", "## Machine", "", _machine(meta), "",
        "## Results", "", markdown_table(rows, compared), "", "### Targets", "", targets_markdown(compared), "",
        summary_line(compared), ""]
    curves = curve_table(rows, markdown=True)
    if curves or chart_name:
        parts += ["## Requests/s and p99 as concurrency grows", ""]
        if chart_name:
            parts += [f"![requests/s and p99 latency vs connections]({chart_name})", ""]
        parts += ["Each cell: requests/s / p99 latency.", "", curves, ""]
    idle = _idle_table(rows)
    if idle:
        parts += ["## Idle keep-alive connections", "", idle, ""]
    parts += ["## How it is measured", "", METHOD, "", "## Reproduce", "", REPRODUCE, "",
              "<details><summary>Exact command lines of this run</summary>", "", _commands(rows), "", "</details>", ""]
    return "\n".join(parts)
