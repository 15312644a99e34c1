"""The compliance report as a reviewer sees it: rendered by headless Chromium, its text answers
"which rule applied, and why did that model win?", names the period, the signed checkpoint and
how to verify it, the policies in force, and the charts carry axes with units."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.reports.support import populate_sqlite
from tests.support.chromium import CHROMIUM, rendered_text
from unhardcoded.cli import main

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium absent (Debian: apt-get install -y chromium)"
)


def test_the_rendered_report_explains_each_decision(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    home = tmp_path / "home"
    populate_sqlite(url, home, rounds=2)
    page = tmp_path / "acme.html"
    args = ["--db", url, "--home", str(home), "--quiet"]
    ran = CliRunner().invoke(
        main, ["report", "compliance", "--tenant", "acme", "--out", str(page), *args]
    )
    assert ran.exit_code == 0, ran.output
    as_json = CliRunner().invoke(
        main,
        [
            "report",
            "compliance",
            "--tenant",
            "acme",
            "--json",
            "--out",
            str(tmp_path / "a.json"),
            *args,
        ],
    )
    assert as_json.exit_code == 0, as_json.output

    text = rendered_text(page)
    assert "Compliance report: tenant acme" in text
    for heading in ("Scope", "How to verify", "Summary", "Charts", "Policies in force"):
        assert heading in text
    for label in ("Generated at", "Ledger size", "tree size", "root SHA-256", "key id"):
        assert label in text, label
    assert "unhardcoded bundle verify" in text
    assert "(UTC, the last decision recorded)" in text
    # Per decision: the removals with observed values against the requirement, and the winner.
    assert "removed, e.g." in text
    assert "needs" in text
    assert "wins on" in text or "only entry that passed" in text
    # Charts: titles, axes and units, as text.
    for label in (
        "Decisions per day, by winning model",
        "day (UTC)",
        "decisions",
        "Removals per rule",
        "rule",
        "Cost per day",
        "cost (USD)",
    ):
        assert label in text, label
    assert "<script" not in page.read_text()
