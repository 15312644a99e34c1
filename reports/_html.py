"""The compliance report as one self-contained HTML page, from a Jinja2 template
(`reports/templates/report.html.j2`): matplotlib charts inline as static SVG, no script, no
external resource (auditors open it offline, and it prints to PDF as it shows)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from reports import _charts
from reports._report import ComplianceReport

__all__ = ["HTML_DECISIONS", "render_html"]

HTML_DECISIONS = 500
"""Decisions listed in the HTML (the JSON report lists them all)."""

_TABLES = (
    ("requests_per_day", "Requests per day"),
    ("providers", "Providers that received data (upstream attempts)"),
    ("regions", "Regions that received data (upstream attempts)"),
    ("no_log", "Decisions whose every upstream attempt went to a no_log entry"),
    ("rules", "Rule hits (decisions where the rule removed at least one entry)"),
    ("fallbacks", "Fallbacks"),
    ("cost_per_day", "Cost per day (USD)"),
)

_ENV = Environment(
    loader=PackageLoader("reports", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)


def _money(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def _period(doc: dict[str, Any]) -> str:
    covered = doc["covered"]
    since = doc["since"] or covered["first_decision_at"]
    until = doc["until"]
    if since is None:
        return "no decision recorded"
    if until is not None:
        return f"{since} to {until} (UTC, end excluded)"
    last = covered["last_decision_at"]
    return f"{since} to {last} (UTC, the last decision recorded)"


def render_html(report: ComplianceReport) -> str:
    """The report as a standalone HTML document (deterministic: same report, same bytes)."""
    doc = report.document
    figures = doc["figures"]
    total = int(figures["summary"][0]["value"])
    charts = {
        "per_day": Markup(_charts.decisions_per_day(figures["decisions_per_day_by_model"])),
        "rules": Markup(_charts.removals_per_rule(figures["rules"])),
        "cost": Markup(_charts.cost_per_day(figures["cost_per_day"])),
    }
    return _ENV.get_template("report.html.j2").render(
        doc=doc,
        ledger=doc.get("ledger"),
        figures=figures,
        period=_period(doc),
        total=total,
        listed=min(total, HTML_DECISIONS),
        decisions=report.decisions(limit=HTML_DECISIONS),
        charts=charts,
        tables=_TABLES,
        models=_charts.MODELS,
        number=_number,
        money=_money,
    )
