"""Rendering for lib.report: one self-contained HTML page (inline CSS and SVG) or Markdown.

Everything taken from the runs -- keys, values, prompts, answers, revision names -- is escaped.
The output has no timestamps, so the same two revisions give the same bytes.
"""
from __future__ import annotations

import json
import math
from html import escape

from lib.report.data import ABSENT, SAMPLES, Curve, DiffRow, Report, change
from lib.report.suites import Cell, SuiteTable

COLOR_A, COLOR_B = "#1f77b4", "#d62728"
ABSENT_TEXT = "absent"


# --- values -------------------------------------------------------------------------------------

def fmt(v) -> str:
    if v is ABSENT:
        return ABSENT_TEXT
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (int, str)):
        return str(v)
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def fmt_change(row: DiffRow) -> tuple[str, str]:
    """(absolute, percent) change as text; blanks when unchanged or not numeric."""
    if row.not_comparable:
        return f"not comparable: {row.not_comparable}", ""
    c = change(row.old, row.new)
    if c is None:
        if row.old is ABSENT or row.new is ABSENT:
            return ("added" if row.old is ABSENT else "removed"), ""
        return ("changed" if row.changed else ""), ""
    delta, pct = c
    if delta == 0:
        return "0", "0%"
    return f"{delta:+.6g}", ("" if pct is None else f"{pct:+.2f}%")


def fmt_cell(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    return f"{cell.value:.4g}" + ("" if cell.stderr is None else f" \u00b1 {cell.stderr:.2g}")


def suite_lines(t: SuiteTable) -> list[list[str]]:
    """Header and rows of the model x suite table as text cells; a forgetting cell is marked."""
    flagged = {(f.suite, f.metric, f.model) for f in t.forgetting}
    out = [["suite", "kind", "metric", *t.models]]
    for r in t.rows:
        cells = [fmt_cell(r.cells.get(m)) + (" (forgetting)" if (r.suite, r.metric, m) in flagged else "")
                 for m in t.models]
        out.append([r.suite, (r.kind or "-") + ("" if r.general else ", domain"), r.metric, *cells])
    return out


def counts_line(report: Report) -> str:
    """'3 metrics changed, 1 not comparable (suite changed); 4 timing fields differ (not counted)'."""
    text = f"{report.changed_metrics} metrics changed"
    if report.not_comparable:
        text += f", {report.not_comparable} not comparable (suite changed)"
    timed = sum(r.changed for r in report.timings)
    if timed:
        text += f"; {timed} timing field{'s' * (timed != 1)} differ{'s' * (timed == 1)} (not counted)"
    return text


# --- SVG line charts ----------------------------------------------------------------------------

def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round tick values (1, 2, 5 times a power of ten) covering [lo, hi]."""
    if hi <= lo:
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks, t = [], first
    while t < hi + step * 0.5:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _tick_label(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.2g}"


def svg_chart(curve: Curve, label_a: str, label_b: str, width: int = 560, height: int = 260) -> str:
    """Both runs' points of one curve as an inline SVG line chart with axes and a legend."""
    # B dashed so the two runs stay distinguishable in grey too
    sides = ((curve.a, COLOR_A, label_a, ""), (curve.b, COLOR_B, label_b, "6 3"))
    series = [side for side in sides if side[0]]
    xs = [x for s, *_ in series for x, _ in s]
    ys = [y for s, *_ in series for _, y in s]
    xt, yt = nice_ticks(min(xs), max(xs)), nice_ticks(min(ys), max(ys))
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]
    left, right, top, bottom = 64, 16, 28, 40
    pw, ph = width - left - right, height - top - bottom

    def px(x):
        return left + (x - x0) / ((x1 - x0) or 1) * pw

    def py(y):
        return top + ph - (y - y0) / ((y1 - y0) or 1) * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(curve.title)}">',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>']
    for t in xt:
        out.append(f'<line x1="{px(t):.1f}" y1="{top + ph}" x2="{px(t):.1f}" y2="{top + ph + 4}" stroke="#999"/>'
                   f'<text x="{px(t):.1f}" y="{top + ph + 16}" text-anchor="middle">{_tick_label(t)}</text>')
    for t in yt:
        out.append(f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + pw}" y2="{py(t):.1f}" stroke="#eee"/>'
                   f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end">{_tick_label(t)}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle">step</text>'
               f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle">'
               f'{escape(curve.column)}</text>')
    for points, color, _, dash in series:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        if len(points) == 1:
            (x, y), = points
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
        else:
            pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5"{dash_attr} points="{pts}"/>')
    # Legend above the plot: A on the left half, B on the right.
    for i, (points, color, label, dash) in enumerate(sides):
        x, y = left + 8 + i * (pw // 2), 12
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        short = label if len(label) <= 36 else label[:35] + "\u2026"
        absent = "" if points else f" ({ABSENT_TEXT})"
        out.append(f'<line x1="{x}" y1="{y}" x2="{x + 22}" y2="{y}" stroke="{color}" stroke-width="2"{dash_attr}/>'
                   f'<text x="{x + 28}" y="{y + 4}">{"AB"[i]}: {escape(short)}{absent}</text>')
    out.append("</svg>")
    return "\n".join(out)


# --- HTML ---------------------------------------------------------------------------------------

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0 1em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.changed td { background: #fffbe6; }
.absent { color: #999; font-style: italic; }
.worse { color: #b22; } .better { color: #272; }
.samples td { white-space: pre-wrap; max-width: 32em; font-family: ui-monospace, monospace; font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
.chart h3 { font-size: 1em; margin: .5em 0 0; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
.a { color: #1f77b4; } .b { color: #d62728; }
"""


def _cell(v, cls: str = "") -> str:
    if v is ABSENT:
        return f'<td class="absent">{ABSENT_TEXT}</td>'
    return f'<td class="{cls}">{escape(fmt(v))}</td>' if cls else f"<td>{escape(fmt(v))}</td>"


def _diff_table(rows: list[DiffRow]) -> str:
    if not rows:
        return "<p>No differences.</p>"
    out = ["<table><tr><th>file</th><th>key</th><th>A</th><th>B</th><th>change</th><th>%</th></tr>"]
    for r in rows:
        delta, pct = fmt_change(r)
        # coloured by better/worse where the metric's direction is known (lower loss, higher tokens/s)
        sign = f" {r.verdict}" if r.verdict else ""
        out.append(f'<tr class="{"changed" if r.changed else ""}"><td>{escape(r.file)}</td>'
                   f"<td>{escape(r.key)}</td>{_cell(r.old, 'num')}{_cell(r.new, 'num')}"
                   f'<td class="num{sign}">{escape(delta)}</td><td class="num{sign}">{escape(pct)}</td></tr>')
    out.append("</table>")
    return "\n".join(out)


def render_html(report: Report) -> str:
    la, lb = report.a.label, report.b.label
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>Run comparison: {escape(la)} vs {escape(lb)}</title>",
             f"<style>{CSS}</style></head><body>",
             f'<h1>Run comparison: <span class="a">A = {escape(la)}</span> vs '
             f'<span class="b">B = {escape(lb)}</span></h1>',
             "<p>Change is B &minus; A; % is relative to A. Green is better, red worse, where the "
             "metric's direction is known (loss down, tokens/s up); other changes are uncoloured.</p>"]
    if report.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in report.notes) + "</ul>")

    parts.append("<h2>Params</h2>")
    parts.append(_diff_table(report.params))
    if report.hidden_params:
        parts.append(f"<p>{report.hidden_params} unchanged params not shown (--all lists them).</p>")

    parts.append("<h2>Metrics</h2>")
    parts.append(f"<p>{escape(counts_line(report))}. A suite whose file changed is not comparable: "
                 f"its scores are shown side by side, never as a change.</p>")
    parts.append(_diff_table(report.metrics))
    if report.hidden_metrics:
        parts.append(f"<p>{report.hidden_metrics} unchanged metrics not shown (--all lists them).</p>")
    if report.timings:
        parts.append("<h3>Timings</h3><p>Seconds and rates vary between identical runs; "
                     "they are listed here and not counted as changes.</p>")
        parts.append(_diff_table(report.timings))
    parts.extend(_suites_html(report))

    parts.append("<h2>Training curves</h2>")
    drawn = [c for c in report.curves if c.a or c.b]
    for stage in dict.fromkeys(c.stage for c in drawn):
        parts.append(f"<h3>{escape(stage)}</h3><div class=\"charts\">")
        for c in (c for c in drawn if c.stage == stage):
            parts.append(f'<div class="chart"><h3>{escape(c.title)} <small>({escape(c.path)})</small></h3>')
            parts.append(svg_chart(c, la, lb))
            parts.append("</div>")
        parts.append("</div>")
    if missing := _absent_curves(report):
        parts.append(f'<p class="absent">{escape(missing)}</p>')

    parts.append("<h2>Sample generations</h2>")
    parts.extend(_absent_samples(report, html=True))
    for model, rows in report.samples.items():
        parts.append(f"<h3>{escape(model)}</h3>")
        parts.append(f'<table class="samples"><tr><th>prompt</th><th class="a">A: {escape(la)}</th>'
                     f'<th class="b">B: {escape(lb)}</th></tr>')
        for prompt, a, b in rows:
            parts.append(f"<tr><td>{escape(prompt)}</td>{_cell(a)}{_cell(b)}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _suites_html(report: Report) -> list[str]:
    t = report.suites
    if t is None:
        return []
    lines = suite_lines(t)
    out = [f"<h2>Eval suites at {escape(report.b.label)}</h2>",
           "<p>Each suite is named with the first 8 hex of its file's SHA-256; &plusmn; is the "
           "standard error. Forgetting: a general benchmark's drop from base to an adapted model larger "
           "than the base's standard error.</p>",
           "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in lines[0]) + "</tr>"]
    for row in lines[1:]:
        cells = "".join(f'<td class="num{" worse" if "forgetting" in c else ""}">{escape(c)}</td>' for c in row[3:])
        out.append(f"<tr><td>{escape(row[0])}</td><td>{escape(row[1])}</td><td>{escape(row[2])}</td>{cells}</tr>")
    out.append("</table>")
    if t.forgetting:
        out.append('<ul class="worse">' + "".join(f"<li>forgetting: {escape(str(f))}</li>" for f in t.forgetting) + "</ul>")
    return out


def _absent_curves(report: Report) -> str:
    names = [f"{c.title} ({c.path})" for c in report.curves if not (c.a or c.b)]
    return f"{ABSENT_TEXT} at both revisions: " + ", ".join(names) if names else ""


def _absent_samples(report: Report, html: bool) -> list[str]:
    out = []
    for side, absent in zip((report.a, report.b), report.samples_absent):
        if absent:
            msg = f"{SAMPLES}: {ABSENT_TEXT} at {side.label}"
            out.append(f'<p class="absent">{escape(msg)}</p>' if html else f"_{msg}_\n")
    return out


# --- Markdown -----------------------------------------------------------------------------------

def _md(v) -> str:
    """A value for a Markdown table cell: pipes escaped, newlines as <br>."""
    text = v if isinstance(v, str) else fmt(v)
    return escape(text, quote=False).replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")


def _md_diff(rows: list[DiffRow]) -> list[str]:
    if not rows:
        return ["No differences.", ""]
    out = ["| file | key | A | B | change | % |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        delta, pct = fmt_change(r)
        mark = {"better": " (better)", "worse": " (worse)"}.get(r.verdict, "")  # no colour in Markdown
        out.append(f"| {_md(r.file)} | {_md(r.key)} | {_md(fmt(r.old))} | {_md(fmt(r.new))} | "
                   f"{_md(delta)}{mark} | {_md(pct)} |")
    return out + [""]


def suites_markdown(t: SuiteTable, html: bool = True) -> list[str]:
    """The model x suite table as Markdown, then one line per forgetting flag. ``html=False``:
    plain text for a terminal (pipes still escaped, nothing HTML-escaped)."""
    cell = _md if html else (lambda v: str(v).replace("|", "\\|"))
    lines = suite_lines(t)
    out = ["| " + " | ".join(cell(c) for c in lines[0]) + " |",
           "| --- | --- | --- |" + " ---: |" * len(t.models)]
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in lines[1:]]
    return out + [""] + [f"- forgetting: {cell(str(f))}" for f in t.forgetting]


def _summary(points) -> list[str]:
    if not points:
        return [ABSENT_TEXT] * 3
    ys = [y for _, y in points]
    return [fmt(ys[0]), fmt(ys[-1]), fmt(min(ys))]


def render_markdown(report: Report) -> str:
    la, lb = report.a.label, report.b.label
    out = [f"# Run comparison: A = {_md(la)} vs B = {_md(lb)}", "", "Change is B - A; % is relative to A.", ""]
    if report.notes:
        out += ["## Notes", ""] + [f"- {_md(n)}" for n in report.notes] + [""]
    out += ["## Params", ""] + _md_diff(report.params)
    if report.hidden_params:
        out += [f"{report.hidden_params} unchanged params not shown (--all lists them).", ""]
    out += ["## Metrics", "", counts_line(report) + ".", ""] + _md_diff(report.metrics)
    if report.hidden_metrics:
        out += [f"{report.hidden_metrics} unchanged metrics not shown (--all lists them).", ""]
    if report.timings:
        out += ["### Timings (vary between identical runs; not counted as changes)", ""] + _md_diff(report.timings)
    if report.suites is not None:
        out += [f"## Eval suites at {_md(lb)}", ""] + suites_markdown(report.suites) + [""]
    out += ["## Training curves", "",
            "| curve | A first | A last | A min | B first | B last | B min |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in report.curves:
        if c.a or c.b:
            out.append("| " + " | ".join([_md(c.title)] + _summary(c.a) + _summary(c.b)) + " |")
    out.append("")
    if missing := _absent_curves(report):
        out += [f"_{_md(missing)}_", ""]
    out += ["## Sample generations", ""] + _absent_samples(report, html=False)
    for model, rows in report.samples.items():
        out += [f"### {_md(model)}", "", f"| prompt | A: {_md(la)} | B: {_md(lb)} |", "| --- | --- | --- |"]
        out += [f"| {_md(p)} | {_md(fmt(a))} | {_md(fmt(b))} |" for p, a, b in rows] + [""]
    return "\n".join(out).rstrip("\n") + "\n"
