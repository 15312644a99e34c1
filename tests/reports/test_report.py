"""The compliance report: figures equal what the ledger recorded, each traceable to decision ids;
the HTML is self-contained (no script, no external resource) and every link resolves."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from reports import build_report, export_parquet, render_html
from tests.reports.support import populate, populate_sqlite
from tests.support.service_backends import Backend
from unhardcoded.cli import main


def _figure(doc: dict, name: str) -> dict[str, dict]:
    return {row["key"]: row for row in doc["figures"][name]}


async def test_figures_trace_back_to_decisions(backend: Backend, tmp_path: Path) -> None:
    async with backend.service() as service:
        done = await populate(service, rounds=2)
        await export_parquet(service.ledger, tmp_path / "x")
        traces = {
            str(d.decision_id): await service.decision(d.decision_id)
            for d in done.decisions
            if d.tenant == "initech"
        }
    doc = build_report(tmp_path / "x", tenant="initech").to_json()
    summary = _figure(doc, "summary")
    assert summary["decisions"]["value"] == len(traces)
    assert summary["decisions"]["decision_ids"] == sorted(traces)

    providers: dict[str, set[str]] = {}
    regions: dict[str, set[str]] = {}
    cost = 0.0
    for decision_id, recorded in traces.items():
        catalog = recorded.trace.catalog
        for attempt in recorded.attempts:
            entry = catalog[attempt.entry]
            providers.setdefault(str(entry.get("provider")), set()).add(decision_id)
            regions.setdefault(str(entry.get("region")), set()).add(decision_id)
            cost += attempt.cost_usd or 0.0
    assert {k: set(v["decision_ids"]) for k, v in _figure(doc, "providers").items()} == providers
    assert {k: set(v["decision_ids"]) for k, v in _figure(doc, "regions").items()} == regions
    assert abs(summary["cost billed (USD, attempts)"]["value"] - cost) < 1e-9

    rules: dict[str, set[str]] = {}
    for decision_id, recorded in traces.items():
        for rule in recorded.trace.rule_ids:
            if recorded.trace.failed_entries(rule):
                rules.setdefault(rule, set()).add(decision_id)
    assert {k: set(v["decision_ids"]) for k, v in _figure(doc, "rules").items()} == rules

    fell_back = {d for d, r in traces.items() if len(r.attempts) > 1}
    assert set(_figure(doc, "fallbacks")["fell back"]["decision_ids"]) == fell_back

    html = render_html(build_report(tmp_path / "x", tenant="initech"))
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<svg" in html
    anchors = set(re.findall(r'id="([^"]+)"', html)) | set(re.findall(r"id='([^']+)'", html))
    links = set(re.findall(r'href="#([^"]+)"', html))
    assert links <= anchors
    assert {f"d-{d}" for d in traces} <= anchors


def test_cli_report_html_and_json(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    home = tmp_path / "home"
    populate_sqlite(url, home)
    runner = CliRunner()
    args = ["--db", url, "--home", str(home), "--quiet"]
    html = runner.invoke(
        main, ["report", "compliance", "--tenant", "acme", "--out", str(tmp_path / "r.html"), *args]
    )
    assert html.exit_code == 0, html.output
    assert html.stdout == f"wrote {tmp_path / 'r.html'}: 4 decisions of tenant acme\n"
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    as_json = runner.invoke(
        main,
        [
            "report",
            "compliance",
            "--tenant",
            "acme",
            "--since",
            "2000-01-01",
            "--until",
            "2000-01-02",
            "--out",
            str(tmp_path / "r.json"),
            "--json",
            *args,
        ],
    )
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["since"] == "2000-01-01T00:00:00Z"
    assert doc["figures"]["summary"][0]["value"] == 0
    empty = tmp_path / "empty.html"
    runner.invoke(main, ["report", "compliance", "--tenant", "nobody", "--out", str(empty), *args])
    assert "None in this period." in empty.read_text()
