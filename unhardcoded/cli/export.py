"""`unhardcoded export parquet`: the decision record as Parquet datasets (docs/reports.md)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from unhardcoded.cli._common import reports_errors
from unhardcoded.cli._options import period_options, progress_option, show_progress, writable_folder
from unhardcoded.cli._period import ProgressBar, run_on_ledger
from unhardcoded.cli._records import db_option, home_option

if TYPE_CHECKING:
    from ledger import Ledger
    from reports import ExportSummary


@click.group()
def export() -> None:
    """Export the decision record for analytics tools.

    \b
    Example:
        unhardcoded export parquet exports/ --tenant acme
    """


@export.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--tenant", help="Only this tenant's decisions (default: every tenant).")
@click.option(
    "--append",
    is_flag=True,
    help="OUT holds an earlier export: add only what the ledger recorded since (same tenant "
    "and period as its manifest.json).",
)
@period_options
@db_option
@home_option
@progress_option
@reports_errors
def parquet(
    out: Path,
    tenant: str | None,
    append: bool,
    since: datetime | None,
    until: datetime | None,
    url: str | None,
    home: Path | None,
    progress: bool | None,
) -> None:
    """Write the datasets decisions, eliminations, rankings, explanations, attempts, catalogs
    and policies under OUT (a new or empty folder), in streaming batches, and OUT/manifest.json
    (the ledger positions covered and the signed checkpoint). Prints the rows written per
    dataset as JSON; the progress bar goes to stderr (when it is a terminal).

    \b
    Example:
        unhardcoded export parquet exports/ --tenant acme --since 2026-01-01 --no-progress
        unhardcoded export parquet exports/ --append --no-progress
    """
    writable_folder(out)
    from reports import export_parquet

    bar = ProgressBar("exporting", enabled=show_progress(progress))

    async def body(ledger: Ledger) -> ExportSummary:
        try:
            return await export_parquet(
                ledger,
                out,
                tenant=tenant,
                since=since,
                until=until,
                progress=bar,
                append=append,
            )
        finally:
            bar.close()

    summary = run_on_ledger(url, home, body)
    note = summary.empty_note(tenant, since, until)
    if note is not None:
        click.echo(f"note: {note}: the export is empty", err=True)
    click.echo(json.dumps(summary.to_json(), indent=2))
