"""`unhardcoded report compliance`: a tenant's compliance report (docs/reports.md)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from unhardcoded.cli._common import reports_errors
from unhardcoded.cli._options import period_options, progress_option, show_progress, writable_file
from unhardcoded.cli._period import ProgressBar, run_on_ledger
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
@progress_option
@reports_errors
def compliance(
    tenant: str,
    since: datetime | None,
    until: datetime | None,
    out: Path,
    as_json: bool,
    url: str | None,
    home: Path | None,
    progress: bool | None,
) -> None:
    """Requests, providers and regions that received data, the share under no_log, rule hits,
    fallbacks and cost of TENANT's decisions in the period, with charts; every figure links to
    the decision ids it counts. One self-contained HTML file (no script, opens offline).

    \b
    Example:
        unhardcoded report compliance --tenant acme --since 2026-01-01 --out acme.html --no-progress
    """
    writable_file(out)
    from reports import build_report, export_parquet, ledger_context, render_html

    bar = ProgressBar("reading", enabled=show_progress(progress))

    async def body(ledger: Ledger) -> tuple[int, str | None]:
        with tempfile.TemporaryDirectory(prefix="unhardcoded-report-") as tmp:
            try:
                summary = await export_parquet(
                    ledger,
                    Path(tmp) / "data",
                    tenant=tenant,
                    since=since,
                    until=until,
                    progress=bar,
                )
            finally:
                bar.close()
            head = await ledger.sequence() or await ledger.latest_checkpoint()
            context = None
            if head is not None:
                now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                context = ledger_context(head.note, head.verifier_key, now)
            built = build_report(
                Path(tmp) / "data", tenant=tenant, since=since, until=until, context=context
            )
            # Written while the export folder exists: the per-decision list streams from it.
            with out.open("w", encoding="utf-8") as handle:
                if as_json:
                    built.write_json(handle)
                else:
                    handle.write(render_html(built))
            decisions = int(built.document["figures"]["summary"][0]["value"])
            return decisions, summary.empty_note(tenant, since, until)

    decisions, note = run_on_ledger(url, home, body)
    if note is not None:
        click.echo(f"note: {note}: the report is empty", err=True)
    click.echo(f"wrote {out}: {decisions} decisions of tenant {tenant}")
