"""The concurrency chart as a hand-written SVG (no plotting library needed):
one row of two panels (req/s, p99 latency) per curve scenario."""

from __future__ import annotations

import math
from html import escape

from .scenarios import BY_NAME, Row

COLORS = {"gantry": "#e4572e", "nginx": "#1f77b4", "nginx→gunicorn": "#2ca02c", "nginx→granian": "#9467bd",
          "gunicorn": "#8c564b", "granian": "#17becf"}
PANEL_W, PANEL_H = 470, 300
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 70, 20, 40, 45
LEGEND_H = 24


def _nice_step(span: float) -> float:
    raw = span / 5
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _panel(x0: float, y0: float, title: str, levels: list[int], series: list[tuple[str, list[tuple[int, float]]]],
           log_y: bool, unit: str) -> list[str]:
    out = []
    plot_w, plot_h = PANEL_W - MARGIN_L - MARGIN_R, PANEL_H - MARGIN_T - MARGIN_B
    left, top = x0 + MARGIN_L, y0 + MARGIN_T
    values = [v for _, points in series for _, v in points if v > 0]
    lx = [math.log2(level) for level in levels]
    x_min, x_max = min(lx), max(lx) if max(lx) > min(lx) else min(lx) + 1

    def sx(level: int) -> float:
        return left + (math.log2(level) - x_min) / (x_max - x_min) * plot_w

    if log_y:
        lo = 10 ** math.floor(math.log10(min(values))) if values else 0.1
        hi = 10 ** math.ceil(math.log10(max(values))) if values else 10
        if hi <= lo:
            hi = lo * 10
        ticks = [lo * 10 ** i for i in range(int(round(math.log10(hi / lo))) + 1)]

        def sy(v: float) -> float:
            return top + plot_h - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_h
    else:
        hi = max(values) * 1.1 if values else 1
        step = _nice_step(hi)
        hi = math.ceil(hi / step) * step
        ticks = [i * step for i in range(int(round(hi / step)) + 1)]

        def sy(v: float) -> float:
            return top + plot_h - v / hi * plot_h

    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{y0 + 22}" text-anchor="middle" font-size="14" '
               f'font-weight="bold">{escape(title)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    for tick in ticks:
        y = sy(tick)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
        label = _fmt(tick) if not log_y else (f"{tick:g}")
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
    for level in levels:
        x = sx(level)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#f3f3f3"/>')
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11">{level}</text>')
    out.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h + 34}" text-anchor="middle" font-size="12">'
               f'connections (log scale)</text>')
    out.append(f'<text x="{x0 + 16}" y="{top + plot_h / 2}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 {x0 + 16} {top + plot_h / 2})">{escape(unit)}</text>')
    for label, points in series:
        color = COLORS.get(label, COLORS.get(label.split()[0], "#555"))
        width = 3 if label.startswith("gantry") else 2
        good = [(level, v) for level, v in points if v > 0]
        if len(good) > 1:
            path = " ".join(f"{sx(level):.1f},{sy(v):.1f}" for level, v in good)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="{width}"/>')
        for level, v in good:
            out.append(f'<circle cx="{sx(level):.1f}" cy="{sy(v):.1f}" r="3.5" fill="{color}"/>')
    return out


def render_svg(rows: list[Row], caption: str) -> str | None:
    curves: dict[str, list[Row]] = {}
    for row in rows:
        if BY_NAME[row.scenario].kind == "curve":
            curves.setdefault(row.scenario, []).append(row)
    if not curves:
        return None
    labels = list(dict.fromkeys(r.server for rs in curves.values() for r in rs))
    width = 2 * PANEL_W
    height = len(curves) * PANEL_H + LEGEND_H * (len(labels) + 1) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for index, (name, scenario_rows) in enumerate(curves.items()):
        levels = sorted({p["connections"] for r in scenario_rows for p in r.curve})
        rps = [(r.server, [(p["connections"], p["rps"]) for p in r.curve if p.get("status") == "ok"])
               for r in scenario_rows]
        p99 = [(r.server, [(p["connections"], p["p99_ms"]) for p in r.curve if p.get("status") == "ok"])
               for r in scenario_rows]
        title = BY_NAME[name].title.replace("Concurrency curve, ", "")
        out += _panel(0, index * PANEL_H, f"{title}: requests/s", levels, rps, False, "requests/s")
        out += _panel(PANEL_W, index * PANEL_H, f"{title}: p99 latency", levels, p99, True, "p99 latency, ms")
    y = len(curves) * PANEL_H + 10
    for label in labels:
        color = COLORS.get(label, "#555")
        failures = [f"{r.scenario}: {r.reason}" for rs in curves.values() for r in rs
                    if r.server == label and r.status == "failed"]
        text = label + (f" — FAILED ({failures[0][:110]})" if failures else "")
        out.append(f'<rect x="{MARGIN_L}" y="{y + 4}" width="22" height="5" fill="{color}"/>')
        out.append(f'<text x="{MARGIN_L + 30}" y="{y + 11}" font-size="12">{escape(text)}</text>')
        y += LEGEND_H
    out.append(f'<text x="{MARGIN_L}" y="{y + 12}" font-size="11" fill="#666">{escape(caption)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
