"""The compliance report as one self-contained HTML page: inline SVG charts, no script, no
external resource (auditors open it offline). Every bar and table row links to the list of the
decision ids it counts, and every listed id to its row in the decisions appendix."""

from __future__ import annotations

import itertools
import re
from html import escape
from typing import Any

from reports._report import ComplianceReport

__all__ = ["HTML_DECISIONS", "render_html"]

HTML_DECISIONS = 500
"""Decisions listed in the HTML (the JSON report lists them all)."""

_TITLES = {
    "summary": "Summary",
    "requests_per_day": "Requests per day",
    "providers": "Providers that received data (upstream attempts)",
    "regions": "Regions that received data (upstream attempts)",
    "no_log": "Decisions whose every upstream attempt went to a no_log entry",
    "rules": "Rule hits (decisions where the rule removed at least one entry)",
    "fallbacks": "Fallbacks",
}
_CHARTS = ("requests_per_day", "providers", "regions", "no_log", "rules", "fallbacks")
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;font-size:.9rem}
th{background:#f3f3f3} code{font-size:.85rem} svg text{font-size:12px;font-family:sans-serif}
.ids{font-size:.8rem;columns:2}
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "none"


def _anchor(figure: str, key: str, index: int) -> str:
    return f"ids-{figure}-{index}-{_slug(key)}"


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)


def _chart(figure: str, rows: list[dict[str, Any]], measure: str) -> str:
    if not rows:
        return "<p>None in this period.</p>"
    width, label_width, bar_height = 720, 260, 22
    top = max(float(row[measure] or 0) for row in rows) or 1.0
    height = bar_height * len(rows) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(_TITLES[figure])}">'
    ]
    for i, row in enumerate(rows):
        y = 4 + i * bar_height
        value = float(row[measure] or 0)
        length = (width - label_width - 80) * value / top
        parts.append(
            f'<a href="#{_anchor(figure, row["key"], i)}">'
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(row['key'])}</text>"
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="{bar_height - 6}" '
            'fill="#4a7bb7"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 15}">{_number(row[measure])}</text>'
            "</a>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(figure: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    columns = [c for c in rows[0] if c != "key"]
    head = "".join(f"<th>{escape(c)}</th>" for c in ["", *columns])
    body = []
    for i, row in enumerate(rows):
        cells = "".join(f"<td>{escape(_number(row[c]))}</td>" for c in columns)
        body.append(
            f'<tr id="{_anchor(figure, row["key"], i)}"><td>{escape(row["key"])}</td>{cells}</tr>'
        )
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(report: ComplianceReport) -> str:
    """The report as a standalone HTML document (deterministic: same report, same bytes)."""
    doc = report.document
    figures: dict[str, list[dict[str, Any]]] = doc["figures"]
    period = f"{doc['since'] or 'the beginning'} to {doc['until'] or 'now'}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Compliance report: {escape(doc['tenant'])}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Compliance report: tenant <code>{escape(doc['tenant'])}</code></h1>",
        f"<p>Decisions recorded from {escape(period)} (UTC, end excluded). Every figure links "
        "to the decision ids it counts; each id links to its row in the appendix. The same "
        f"figures are in the JSON report (<code>{escape(doc['schema'])}</code>).</p>",
        f"<h2>{_TITLES['summary']}</h2>",
        _table("summary", figures["summary"]),
    ]
    for figure in _CHARTS:
        rows = figures[figure]
        out.append(f"<h2 id='fig-{figure}'>{escape(_TITLES[figure])}</h2>")
        out.append(_chart(figure, rows, "decisions"))
        out.append(_table(figure, rows))
    total = int(figures["summary"][0]["value"])
    listed = min(total, HTML_DECISIONS)
    out.append(
        f"<h2>Appendix: decisions</h2><p>{listed} of {total} decisions listed here, in ledger "
        "order; the JSON report and the Parquet export list every one.</p><table>"
    )
    out.append(
        "<tr><th>decision id</th><th>recorded at</th><th>position</th><th>preview</th>"
        "<th>policy</th><th>selected</th><th>attempts</th></tr>"
    )
    for d in itertools.islice(report.decisions(), HTML_DECISIONS):
        tried = "; ".join(f"{a['entry']}: {a['status']}" for a in d["attempts"])
        out.append(
            f'<tr id="d-{d["decision_id"]}"><td><code>{d["decision_id"]}</code></td>'
            f"<td>{escape(d['recorded_at'])}</td><td>{d['position']}</td>"
            f"<td>{'yes' if d['preview'] else 'no'}</td><td>{escape(d['policy'])}</td>"
            f"<td>{escape(d['selected'] or 'no entry passed')}</td>"
            f"<td>{escape(tried)}</td></tr>"
        )
    out.append("</table></body></html>\n")
    return "\n".join(out)
