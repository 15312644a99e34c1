"""The compliance report: figures equal what the ledger recorded, each traceable to decision ids;
the HTML is self-contained (no script, no external resource) and every link resolves."""

from __future__ import annotations

import io
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


async def test_figures_equal_the_recorded_decisions(backend: Backend, tmp_path: Path) -> None:
    """Every figure equals what the recorded traces say, and the per-decision list carries what
    each figure counts (so every number traces back to decision ids)."""
    async with backend.service() as service:
        done = await populate(service, rounds=2)
        await export_parquet(service.ledger, tmp_path / "x")
        traces = {
            str(d.decision_id): await service.decision(d.decision_id)
            for d in done.decisions
            if d.tenant == "initech"
        }
    report = build_report(tmp_path / "x", tenant="initech")
    doc = report.to_json()
    summary = _figure(doc, "summary")
    assert summary["decisions"]["value"] == len(traces)
    listing = {d["decision_id"]: d for d in doc["decisions"]}
    assert list(listing) == sorted(traces, key=lambda d: listing[d]["position"])
    assert set(listing) == set(traces)

    providers: dict[str, set[str]] = {}
    regions: dict[str, set[str]] = {}
    tried: dict[str, int] = {}
    cost = 0.0
    for decision_id, recorded in traces.items():
        catalog = recorded.trace.catalog
        for attempt in recorded.attempts:
            entry = catalog[attempt.entry]
            providers.setdefault(str(entry.get("provider")), set()).add(decision_id)
            regions.setdefault(str(entry.get("region")), set()).add(decision_id)
            tried[str(entry.get("provider"))] = tried.get(str(entry.get("provider")), 0) + 1
            cost += attempt.cost_usd or 0.0
        shown = listing[decision_id]["attempts"]
        assert [a["entry"] for a in shown] == [a.entry for a in recorded.attempts]
        assert [a["provider"] for a in shown] == [
            catalog[a.entry].get("provider") for a in recorded.attempts
        ]
    assert {k: v["decisions"] for k, v in _figure(doc, "providers").items()} == {
        k: len(v) for k, v in providers.items()
    }
    assert {k: v["attempts"] for k, v in _figure(doc, "providers").items()} == tried
    assert {k: v["decisions"] for k, v in _figure(doc, "regions").items()} == {
        k: len(v) for k, v in regions.items()
    }
    assert abs(summary["cost billed (USD, attempts)"]["value"] - cost) < 1e-9

    rules: dict[str, set[str]] = {}
    removals: dict[str, int] = {}
    for decision_id, recorded in traces.items():
        removed = {}
        for rule in recorded.trace.rule_ids:
            if failed := recorded.trace.failed_entries(rule):
                rules.setdefault(rule, set()).add(decision_id)
                removals[rule] = removals.get(rule, 0) + len(failed)
                removed[rule] = len(failed)
        assert {r["rule"]: r["entries"] for r in listing[decision_id]["removed"]} == removed
    assert {k: v["decisions"] for k, v in _figure(doc, "rules").items()} == {
        k: len(v) for k, v in rules.items()
    }
    assert {k: v["eliminations"] for k, v in _figure(doc, "rules").items()} == removals

    fell_back = {d for d, r in traces.items() if len(r.attempts) > 1}
    assert _figure(doc, "fallbacks")["fell back"]["decisions"] == len(fell_back)
    assert {d for d, row in listing.items() if len(row["attempts"]) > 1} == fell_back

    streamed = io.StringIO()
    report.write_json(streamed)
    assert json.loads(streamed.getvalue()) == doc

    html = render_html(report)
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
