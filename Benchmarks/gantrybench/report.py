"""Turning rows into the table (console and Markdown), the target checks, and JSON."""

from __future__ import annotations

from dataclasses import asdict

from .scenarios import BY_NAME, Row

METRIC_NAMES = {"rps": "req/s", "p99_ms": "p99", "rss_mib": "RSS", "errors": "errors"}


def _value(row: Row, metric: str):
    return getattr(row, metric)


def comparisons(rows: list[Row]) -> list[dict]:
    """Gantry ÷ peer for every target of every scenario that ran."""
    found = []
    for scenario_name in dict.fromkeys(r.scenario for r in rows):
        scenario = BY_NAME[scenario_name]
        by_server = {r.server: r for r in rows if r.scenario == scenario_name}
        targets = list(scenario.targets)
        for target in targets:
            gantry, peer = by_server.get(target.gantry), by_server.get(target.peer)
            if gantry is None or peer is None:
                continue
            entry = {"scenario": scenario_name, "gantry": target.gantry, "peer": target.peer,
                     "metric": target.metric, "op": target.op, "target": target.value, "ratio": None}
            g, p = _value(gantry, target.metric), _value(peer, target.metric)
            if g is not None and p:
                entry["ratio"] = round(g / p, 3)
            if gantry.status == "failed" and (target.op or g is None):
                entry["result"] = "FAIL" if target.op else "gantry failed"
                entry["why"] = "gantry failed"
            elif peer.status == "failed" or entry["ratio"] is None:
                entry["result"] = "n/a"
                entry["why"] = "peer failed" if peer.status == "failed" else "no figure"
            elif target.op is None:
                entry["result"] = "—"
            else:
                ok = entry["ratio"] >= target.value if target.op == ">=" else entry["ratio"] <= target.value
                entry["result"] = "PASS" if ok else "FAIL"
            found.append(entry)
        if scenario.kind == "reload" and "gantry" in by_server:
            gantry = by_server["gantry"]
            entry = {"scenario": scenario_name, "gantry": "gantry", "peer": None, "metric": "errors",
                     "op": "==", "target": 0, "ratio": gantry.errors,
                     "result": "PASS" if gantry.status == "ok" and gantry.errors == 0 else "FAIL"}
            if gantry.status == "failed":
                entry["why"] = "gantry failed"
            found.append(entry)
    return found


def _ms(value) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value:.3f}"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def _num(value, digits=0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _comparison_text(entry: dict) -> str:
    metric = METRIC_NAMES[entry["metric"]]
    if entry["peer"] is None:
        why = f", {entry['why']}" if entry.get("why") else ""
        shown = "—" if entry["ratio"] is None else entry["ratio"]
        return f"{metric} {shown} (= {entry['target']}: {entry['result']}{why})"
    ratio = "—" if entry["ratio"] is None else f"{entry['ratio']:.2f}×"
    if entry["op"] is None:
        return f"{ratio} {metric}" if entry["result"] == "—" else f"{metric}: {entry['result']}"
    why = f", {entry['why']}" if entry.get("why") else ""
    return f"{ratio} {metric} ({entry['op']}{entry['target']:g}: {entry['result']}{why})"


def table_rows(rows: list[Row], compared: list[dict]) -> list[list[str]]:
    lines = []
    for row in rows:
        mine = [c for c in compared if c["scenario"] == row.scenario and
                (c["peer"] == row.server or (c["peer"] is None and c["gantry"] == row.server))]
        vs = "; ".join(_comparison_text(c) for c in mine)
        if row.is_gantry and not vs:
            vs = "(Gantry)"
        note = row.reason if row.status == "failed" else row.note
        if row.status == "failed" and row.note:
            note += f" [{row.note}]"
        lines.append([row.scenario, row.server, "ok" if row.status == "ok" else "FAILED", _num(row.rps),
                      _ms(row.p50_ms), _ms(row.p99_ms), _num(row.errors), _num(row.rss_mib, 1),
                      _num(row.cpu_us_per_request), vs, note])
    return lines


HEADER = ["Scenario", "Server", "Status", "req/s", "p50 ms", "p99 ms", "Errors", "Peak RSS MiB",
          "CPU µs/req", "Gantry vs this", "Notes"]
NUMERIC = {3, 4, 5, 6, 7, 8}


def console_table(rows: list[Row], compared: list[dict]) -> str:
    body = table_rows(rows, compared)
    widths = [max(len(h), *(len(line[i]) for line in body)) if body else len(h) for i, h in enumerate(HEADER)]
    numeric = NUMERIC

    def fmt(cells):
        return "  ".join(c.rjust(widths[i]) if i in numeric else c.ljust(widths[i])
                         for i, c in enumerate(cells)).rstrip()
    out = [fmt(HEADER), fmt(["-" * w for w in widths])]
    previous = None
    for line in body:
        if previous and line[0] != previous:
            out.append("")
        previous = line[0]
        out.append(fmt(line))
    return "\n".join(out)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(rows: list[Row], compared: list[dict]) -> str:
    body = table_rows(rows, compared)
    out = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---:" if i in NUMERIC else "---"
                                                          for i in range(len(HEADER))) + "|"]
    for line in body:
        cells = [_md_escape(c) for c in line]
        if cells[2] == "FAILED":
            cells[2] = "**FAILED**"
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def targets_markdown(compared: list[dict]) -> str:
    with_target = [c for c in compared if c["op"]]
    if not with_target:
        return "_No target was measured in this run._"
    out = ["| Scenario | Gantry vs | Metric | Ratio | Target | Result |", "|---|---|---|---:|---|---|"]
    for c in with_target:
        ratio = "—" if c["ratio"] is None else (f"{c['ratio']}" if c["peer"] is None else f"{c['ratio']:.2f}×")
        result = c["result"] + (f" ({c['why']})" if c.get("why") else "")
        out.append(f"| {c['scenario']} | {c['peer'] or '—'} | {METRIC_NAMES[c['metric']]} | {ratio} | "
                   f"{c['op']} {c['target']:g} | **{result}** |")
    return "\n".join(out)


def curve_table(rows: list[Row], markdown: bool = False) -> str:
    curves = [r for r in rows if r.curve]
    if not curves:
        return ""
    levels = sorted({p["connections"] for r in curves for p in r.curve})
    header = ["Scenario", "Server"] + [f"c={c}" for c in levels]
    body = []
    for row in curves:
        points = {p["connections"]: p for p in row.curve}
        cells = [row.scenario, row.server]
        for level in levels:
            point = points.get(level)
            if point is None:
                cells.append("")
            elif point["status"] != "ok":
                cells.append("FAILED" + (f" ({_num(point['rps'])} / {_ms(point['p99_ms'])} ms)" if "rps" in point else ""))
            else:
                cells.append(f"{_num(point['rps'])} / {_ms(point['p99_ms'])} ms")
        body.append(cells)
    if markdown:
        return "\n".join(["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * len(levels)] +
                         ["| " + " | ".join(cells) + " |" for cells in body])
    widths = [max(len(h), *(len(line[i]) for line in body)) for i, h in enumerate(header)]
    lines = [header, ["-" * w for w in widths]] + body
    return "\n".join("  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(line)).rstrip()
                     for line in lines)


def summary_line(compared: list[dict]) -> str:
    with_target = [c for c in compared if c["op"]]
    counts = {k: sum(1 for c in with_target if c["result"] == k) for k in ("PASS", "FAIL", "n/a")}
    return f"Targets: {counts['PASS']} pass, {counts['FAIL']} fail, {counts['n/a']} not measurable (peer failed)"


def to_json(meta: dict, rows: list[Row], compared: list[dict]) -> dict:
    return {"meta": meta, "rows": [asdict(r) for r in rows], "comparisons": compared}


def rows_from_json(data: dict) -> list[Row]:
    return [Row(**r) for r in data["rows"]]
