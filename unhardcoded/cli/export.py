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

EXIT_INVALID = 1
"""`export verify`: the folder does not verify."""

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
@click.option(
    "--no-proof",
    is_flag=True,
    help="With --tenant: no completeness proof (nothing is appended to the ledger and no "
    "checkpoint signed), e.g. on a read-only copy of the ledger.",
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
    no_proof: bool,
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

    With --tenant, OUT/manifest.json also proves the folder holds every decision of the tenant
    in the period (docs/reports.md, "Completeness of a tenant's export"; check it with `export
    verify`): the tenant's sequence is sealed first when nothing bounds the period yet, and the
    data stops at the seal.

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
                prove=not no_proof,
            )
        finally:
            bar.close()

    summary = run_on_ledger(url, home, body)
    note = summary.empty_note(tenant, since, until)
    if note is not None:
        click.echo(f"note: {note}: the export is empty", err=True)
    click.echo(json.dumps(summary.to_json(), indent=2))


@export.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--key",
    metavar="PUB",
    help="The ledger's verifier key (the string, or a file holding it). Default: the key the "
    "folder's manifest names, which only shows the folder is self-consistent.",
)
@click.option(
    "--require-complete",
    is_flag=True,
    help="Fail when the folder does not prove its completeness (an export of every tenant, or "
    "one made by an earlier release).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@reports_errors
def verify(folder: Path, key: str | None, require_complete: bool, as_json: bool) -> None:
    """Check offline, with no database, that the tenant export FOLDER holds every decision of
    its tenant in its period: the manifest's checkpoint is signed by the key, each proven
    boundary and seal event hashes to a leaf whose inclusion proof leads to the signed root,
    and with the `sequence` numbers of the decisions' rows they make the tenant's sequence
    without a gap from the event before the period to the one after it (or its seal). Exit 0
    when all holds (an export without a proof with a note saying so); exit 1 naming every
    problem.

    \b
    Example:
        unhardcoded export verify exports/ --key ledger.pub --require-complete
    """
    from reports import verify_export

    result = verify_export(folder, key=key, require_complete=require_complete)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    elif result.ok:
        proof = result.completeness
        if proof is not None:
            click.echo(
                f"ok: complete: the {result.decisions} decisions of {proof['stream']} recorded "
                f"in the period up to {proof['proven_until']} are all in the folder (versions "
                f"{proof['first_version']}..{proof['last_version']}, boundaries proven against "
                f"the checkpoint at tree size {result.tree_size} signed by {result.key})"
            )
        for note in result.notes:
            click.echo(f"note: {note}")
    else:
        for problem in result.problems:
            click.echo(f"problem: {problem}", err=True)
        click.echo(f"error: export {folder} does not verify", err=True)
    if not result.ok:
        raise SystemExit(EXIT_INVALID)
