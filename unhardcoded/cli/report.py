"""`unhardcoded report compliance`: a tenant's compliance report (docs/reports.md)."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from unhardcoded.cli._common import reports_errors
from unhardcoded.cli._period import ProgressBar, period_options, run_on_ledger
from unhardcoded.cli._records import db_option, home_option

if TYPE_CHECKING:
    from ledger import Ledger


@click.group()
def report() -> None:
    """Reports for compliance teams.

    \b
    Example:
        unhardcoded report compliance --tenant acme --out acme.html
    """


@report.command()
@click.option("--tenant", required=True, help="The tenant the report is about.")
@period_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the report (HTML, or JSON with --json).",
)
@click.option("--json", "as_json", is_flag=True, help="Write the machine-readable JSON instead.")
@db_option
@home_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@reports_errors
def compliance(
    tenant: str,
    since: datetime | None,
    until: datetime | None,
    out: Path,
    as_json: bool,
    url: str | None,
    home: Path | None,
    quiet: bool,
) -> None:
    """Requests, providers and regions that received data, the share under no_log, rule hits,
    fallbacks and cost of TENANT's decisions in the period, with charts; every figure links to
    the decision ids it counts. One self-contained HTML file (no script, opens offline).

    \b
    Example:
        unhardcoded report compliance --tenant acme --since 2026-01-01 --out acme.html --quiet
    """
    from reports import build_report, export_parquet, render_html

    bar = ProgressBar("reading", enabled=not quiet)

    async def body(ledger: Ledger) -> int:
        with tempfile.TemporaryDirectory(prefix="unhardcoded-report-") as tmp:
            try:
                await export_parquet(
                    ledger,
                    Path(tmp) / "data",
                    tenant=tenant,
                    since=since,
                    until=until,
                    progress=bar,
                )
            finally:
                bar.close()
            built = build_report(Path(tmp) / "data", tenant=tenant, since=since, until=until)
            # Written while the export folder exists: the per-decision list streams from it.
            with out.open("w", encoding="utf-8") as handle:
                if as_json:
                    built.write_json(handle)
                else:
                    handle.write(render_html(built))
            return int(built.document["figures"]["summary"][0]["value"])

    decisions = run_on_ledger(url, home, body)
    click.echo(f"wrote {out}: {decisions} decisions of tenant {tenant}")
