"""The compliance report's charts: matplotlib figures rendered to static SVG (no script).

Text stays text (`svg.fonttype: none`) so it is searchable and prints sharply; the hash salt and
an empty date make the same figures give the same bytes (the bundle verifier compares them)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["MODELS", "cost_per_day", "decisions_per_day", "removals_per_rule"]

_STYLE: dict[Any, Any] = {
    "svg.hashsalt": "unhardcoded-report",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
MODELS = 8
"""Winning models shown by name per chart; the others are summed as "other"."""


@contextlib.contextmanager
def _figure(height: float) -> Iterator[Figure]:
    """A figure in the report's style. matplotlib is imported here, not with the module: it
    costs ~25 MB and half a second, which the exports, bundles and replays that import this
    package (and never draw) would otherwise pay."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE):
        yield Figure(figsize=(7.5, height))


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = out.getvalue()
    return text[text.index("<svg") :]


def _empty(title: str) -> str:
    return f"<p>{title}: none in this period.</p>"


def decisions_per_day(rows: Sequence[dict[str, Any]]) -> str:
    """Stacked bars: decisions per UTC day, per winning model (the most frequent by name)."""
    if not rows:
        return _empty("Decisions per day")
    totals: dict[str, int] = {}
    for row in rows:
        totals[row["model"]] = totals.get(row["model"], 0) + row["decisions"]
    named = sorted(totals, key=lambda m: (-totals[m], m))[:MODELS]
    days = sorted({row["key"] for row in rows})
    series: dict[str, list[int]] = {m: [0] * len(days) for m in [*named, "other"]}
    for row in rows:
        model = row["model"] if row["model"] in named else "other"
        series[model][days.index(row["key"])] += row["decisions"]
    with _figure(3.2) as figure:
        axes = figure.subplots()
        bottom = [0] * len(days)
        for model, counts in series.items():
            if any(counts):
                axes.bar(days, counts, bottom=bottom, label=model)
                bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
        axes.set_xlabel("day (UTC)")
        axes.set_ylabel("decisions")
        axes.set_title("Decisions per day, by winning model")
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        axes.tick_params(axis="x", labelrotation=45)
        return _svg(figure)


def removals_per_rule(rows: Sequence[dict[str, Any]]) -> str:
    """Horizontal bars: per rule, the decisions in which it removed at least one entry."""
    if not rows:
        return _empty("Removals per rule")
    with _figure(0.9 + 0.32 * len(rows)) as figure:
        axes = figure.subplots()
        keys = [row["key"] for row in rows][::-1]
        values = [row["decisions"] for row in rows][::-1]
        bars = axes.barh(keys, values, color="#4a7bb7")
        axes.bar_label(bars, padding=3, fontsize=8)
        axes.set_xlabel("decisions in which the rule removed entries")
        axes.set_ylabel("rule")
        axes.set_title("Removals per rule")
        return _svg(figure)


def cost_per_day(rows: Sequence[dict[str, Any]]) -> str:
    """Bars per UTC day: the estimated cost of the selected entries and the billed cost."""
    if not rows:
        return _empty("Cost per day")
    with _figure(3.0) as figure:
        axes = figure.subplots()
        days = [row["key"] for row in rows]
        where = range(len(days))
        axes.bar(
            [x - 0.2 for x in where],
            [r["estimated_usd"] for r in rows],
            0.4,
            label="estimated (selected entries)",
        )
        axes.bar(
            [x + 0.2 for x in where],
            [r["billed_usd"] for r in rows],
            0.4,
            label="billed (upstream attempts)",
        )
        axes.set_xticks(list(where), days, rotation=45)
        axes.set_xlabel("day (UTC)")
        axes.set_ylabel("cost (USD)")
        axes.set_title("Cost per day")
        axes.legend(fontsize=7, frameon=False)
        return _svg(figure)
