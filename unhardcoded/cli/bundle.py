"""`unhardcoded bundle create|verify`: self-verifying audit bundles (docs/bundles.md)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from unhardcoded.cli._common import reports_errors
from unhardcoded.cli._options import period_options, progress_option, show_progress, writable_file
from unhardcoded.cli._period import ProgressBar, run_on_ledger
from unhardcoded.cli._records import db_option, home_option

if TYPE_CHECKING:
    from ledger import Ledger
    from reports import BundleSummary

EXIT_INVALID = 1


@click.group()
def bundle() -> None:
    """Audit bundles: one zip an auditor checks offline.

    \b
    Example:
        unhardcoded bundle verify acme.zip
    """


@bundle.command()
@click.option("--tenant", required=True, help="The tenant the bundle is about.")
@period_options
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@db_option
@home_option
@progress_option
@reports_errors
def create(
    tenant: str,
    since: datetime | None,
    until: datetime | None,
    out: Path,
    url: str | None,
    home: Path | None,
    progress: bool | None,
) -> None:
    """Write OUT (a .zip): the tenant's decisions in the period as Parquet, the ledger events
    behind them with one inclusion proof each against a signed checkpoint (the ledger is
    sequenced first) with the witnesses' cosignatures of it ($UNHARDCODED_WITNESSES: the
    checkpoint is submitted to them first when they have not cosigned it yet), the policies and
    catalogs referenced, the verifier key, the compliance report and a manifest of SHA-256s.
    Prints a JSON summary.

    \b
    Example:
        unhardcoded bundle create --tenant acme --since 2026-01-01 acme.zip --no-progress
    """
    writable_file(out)
    from reports import create_bundle

    bar = ProgressBar("bundling", enabled=show_progress(progress))

    async def body(ledger: Ledger) -> BundleSummary:
        from unhardcoded.cli._witnesses import cosigner

        try:
            async with cosigner(ledger) as cosigned:
                return await create_bundle(
                    ledger,
                    out,
                    tenant=tenant,
                    since=since,
                    until=until,
                    progress=bar,
                    cosigned=cosigned,
                )
        finally:
            bar.close()

    made = run_on_ledger(url, home, body)
    if made.note is not None:
        click.echo(
            f"note: {made.note}: the bundle is empty (its completeness proof shows there is "
            "no decision to hold)",
            err=True,
        )
    click.echo(json.dumps(made.to_json(), indent=2))


@bundle.command()
@click.argument("bundle_file", metavar="BUNDLE", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    metavar="PUB",
    help="The ledger's verifier key (the string, or a file holding it). Default: the key in "
    "the bundle, which only shows the bundle is self-consistent.",
)
@click.option(
    "--witness-key",
    "witness_keys",
    metavar="VKEY",
    multiple=True,
    help="A witness's public key (the vkey, or a file holding it); repeatable. The checkpoint "
    "must carry valid cosignatures by --quorum of them (docs/witness.md).",
)
@click.option(
    "--quorum",
    type=click.IntRange(min=1),
    help="How many of the --witness-key witnesses must have cosigned (default: all of them).",
)
@click.option(
    "--require-complete",
    is_flag=True,
    help="Fail when the bundle does not prove its completeness (a bundle of an earlier "
    "release, or one whose decisions were all left out with their proof).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes that check the event lines beside the work on the decisions "
    "(default: one per CPU).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@reports_errors
def verify(
    bundle_file: Path,
    key: str | None,
    witness_keys: tuple[str, ...],
    quorum: int | None,
    require_complete: bool,
    workers: int | None,
    as_json: bool,
) -> None:
    """Check BUNDLE offline, with no database: manifest hashes, the checkpoint signature, each
    event's leaf hash recomputed from its bytes and its inclusion proof, the data against the
    proven events (decisions one-to-one), the policies and catalogs and their digests, and the
    report; completeness (the tenant's decision sequence from the event before the period to
    the one after it, or its seal: no decision of the period is left out); with --witness-key,
    the witnesses' cosignatures of the checkpoint (a quorum of valid ones, none forged). Exit 0
    when all holds (a bundle of an earlier release, without a completeness proof, with a note
    saying so); exit 1 naming every problem.

    \b
    Example:
        unhardcoded bundle verify acme.zip --key "$(cat ledger.pub)"
        unhardcoded bundle verify acme.zip --key ledger.pub --witness-key w1.vkey --quorum 1
    """
    from reports import verify_bundle

    result = verify_bundle(
        bundle_file,
        key=key,
        witness_keys=witness_keys,
        quorum=quorum,
        require_complete=require_complete,
        workers=workers,
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    elif result.ok:
        click.echo(
            f"ok: {result.decisions} decisions, {result.events} events proven against the "
            f"checkpoint at tree size {result.tree_size} signed by {result.key} "
            f"({'given key' if result.key_source == 'given' else 'key inside the bundle'})"
        )
        if result.witnesses:
            valid = sum(w["status"] == "valid" for w in result.witnesses)
            click.echo(
                f"ok: cosigned by {valid} of {len(result.witnesses)} witnesses "
                f"(quorum {result.quorum})"
            )
        proof = result.completeness
        if proof is not None:
            click.echo(
                f"ok: complete: every decision of {proof['stream']} recorded in the period up "
                f"to {proof['proven_until']} is in the bundle (versions "
                f"{proof['first_version']}..{proof['last_version']}, boundaries included)"
            )
        for note in result.notes:
            click.echo(f"note: {note}")
    else:
        for problem in result.problems:
            click.echo(f"problem: {problem}", err=True)
        click.echo(f"error: bundle {bundle_file} does not verify", err=True)
    if not result.ok:
        raise SystemExit(EXIT_INVALID)
