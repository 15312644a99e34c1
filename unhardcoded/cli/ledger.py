"""`unhardcoded ledger …`: verify, sequence and sign, show events, serve proofs."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from unhardcoded.cli._common import reports_errors
from unhardcoded.cli._options import period_options, progress_option, show_progress
from unhardcoded.cli._period import ProgressBar
from unhardcoded.cli._records import db_option, home_option, with_service
from unhardcoded.cli.rank import render_table

if TYPE_CHECKING:
    from ledger import Envelope, Ledger, SignedCheckpoint, VerifyReport
    from router.services.decisions import Decision, DecisionService

T = TypeVar("T")

EXIT_TAMPERED = 1
MAX_CHUNK = 1_000_000
"""The most events one verify query reads (a bound on its memory)."""
MAX_VERIFY_WORKERS = 256

_db_option = db_option
_home_option = home_option


def _run(url: str | None, home: Path | None, body: Callable[[Ledger], Awaitable[T]]) -> T:
    import asyncio

    from ledger import open_ledger
    from unhardcoded.settings import Settings

    settings = Settings()

    async def main() -> T:
        target = url or settings.database_url
        async with open_ledger(target, home=home or settings.home) as led:
            return await body(led)

    return asyncio.run(main())


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


@click.group()
def ledger() -> None:
    """The tamper-evident ledger: verify it, sign checkpoints, show events and proofs.

    \b
    Example:
        unhardcoded ledger verify --db sqlite+aiosqlite:///./unhardcoded.db
    """


class _Workers(click.ParamType):  # type: ignore[type-arg]
    """A positive process count, or `auto` (None)."""

    name = "N|auto"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | None:
        if value is None or value == "auto":
            return None
        try:
            count = int(str(value))
        except ValueError:
            count = 0
        if not 1 <= count <= MAX_VERIFY_WORKERS:
            self.fail(
                f"{value!r} is not 'auto' or a process count from 1 to {MAX_VERIFY_WORKERS}",
                param,
                ctx,
            )
        return count


_WORKERS = _Workers()


def _verifier_keys(
    _ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """Each `--trust-key` must be a verifier key: a typo is bad input, not a tampered ledger."""
    if not values:
        return values
    from ledger import LedgerError, parse_verifier_key

    for value in values:
        try:
            parse_verifier_key(value)
        except (LedgerError, ValueError) as exc:
            raise click.BadParameter(f"{value[:80]!r} is not a verifier key: {exc}") from None
    return values


@ledger.command()
@_db_option
@_home_option
@click.option(
    "--chunk",
    type=click.IntRange(1, MAX_CHUNK),
    default=50_000,
    show_default=True,
    help="Events read per query.",
)
@click.option(
    "--workers",
    type=_WORKERS,
    default="auto",
    show_default=True,
    help="Processes that check ranges of the log in parallel; auto: one per CPU from 200,000 "
    "events on, else 1.",
)
@click.option(
    "--trust-key",
    "trusted",
    multiple=True,
    metavar="VKEY",
    callback=_verifier_keys,
    help="Accept only checkpoints signed by these verifier keys (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@progress_option
@reports_errors
def verify(
    url: str | None,
    home: Path | None,
    chunk: int,
    workers: int | None,
    trusted: tuple[str, ...],
    as_json: bool,
    progress: bool | None,
) -> None:
    """Recompute every digest, the hash chain, the Merkle tree and every checkpoint signature.

    Exit 0 when intact; exit 1 naming the first bad position otherwise (--json: `intact`,
    `events`, `checkpoints`, `tree_size`, `root`, `problem`, `witnesses`). Then one line per
    witness: the tree size it cosigned and its last submission's outcome (docs/witness.md).
    Exit 2 when the ledger cannot be read at all (bad input, not a ledger): that is not a
    verdict on its integrity. The progress bar goes to stderr (when it is a terminal).

    \b
    Example:
        unhardcoded ledger verify --db sqlite+aiosqlite:///./unhardcoded.db
        unhardcoded ledger verify --workers 2 --db sqlite+aiosqlite:///./unhardcoded.db
        unhardcoded ledger verify --json --no-progress
    """
    from unhardcoded.cli._witnesses import witness_lines

    bar = ProgressBar("verifying", enabled=show_progress(progress))

    async def body(led: Ledger) -> tuple[VerifyReport, list[str]]:
        try:
            report = await led.verify(
                chunk=chunk, trusted_keys=trusted or None, workers=workers, progress=bar
            )
        finally:
            bar.close()
        return report, await witness_lines(led)

    report, witnesses = _run(url, home, body)
    if as_json:
        _print_json(
            {
                "intact": report.problem is None,
                "events": report.events,
                "checkpoints": report.checkpoints,
                "tree_size": report.tree_size,
                "root": report.root_hash.hex() if report.root_hash else None,
                "problem": None if report.problem is None else str(report.problem),
                "witnesses": witnesses,
            }
        )
    if report.problem is not None:
        click.echo(f"ledger TAMPERED: {report.problem}", err=True)
        if not as_json:
            for line in witnesses:
                click.echo(line, err=True)
        sys.exit(EXIT_TAMPERED)
    if as_json:
        return
    root = report.root_hash.hex() if report.root_hash else "(empty)"
    click.echo(
        f"ledger intact: {report.events} events, {report.checkpoints} signed checkpoints, "
        f"root {root}"
    )
    for line in witnesses:
        click.echo(line)


@ledger.command()
@_db_option
@_home_option
@click.option(
    "--public-key",
    is_flag=True,
    help="Only print the verifier key this ledger signs with (signs nothing).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the checkpoint as JSON (tree_size, root, note, verifier_key).",
)
@progress_option
@reports_errors
def checkpoint(
    url: str | None, home: Path | None, public_key: bool, as_json: bool, progress: bool | None
) -> None:
    """Sequence every new event into the Merkle tree, sign a checkpoint and print its note.

    Signs only with the key this ledger signs with: a home folder holding no key or another
    key is refused (see `ledger rotate-key`); only a new ledger's first checkpoint creates a key.
    The progress bar of a long sequencing goes to stderr (when it is a terminal).

    \b
    Example:
        unhardcoded ledger checkpoint --db sqlite+aiosqlite:///./unhardcoded.db
        unhardcoded ledger checkpoint --public-key
        unhardcoded ledger checkpoint --json
    """

    bar = ProgressBar("sequencing", enabled=show_progress(progress))

    async def body(led: Ledger) -> tuple[str, SignedCheckpoint | None]:
        if public_key:
            return await led.verifier_key(), None
        try:
            signed = await led.sequence(progress=bar if bar.enabled else None)
        finally:
            bar.close()
        if signed is None:
            signed = await led.latest_checkpoint()
        # The key of the checkpoint itself: a home holding no key (or another) only reads.
        key = signed.verifier_key if signed is not None else await led.verifier_key()
        return key, signed

    key, signed = _run(url, home, body)
    if as_json:
        document: dict[str, Any] = {"verifier_key": key}
        if not public_key:
            document["checkpoint"] = None if signed is None else _checkpoint_json(signed)
        _print_json(document)
    elif public_key:
        click.echo(key)
    elif signed is None:
        click.echo("(another process is sequencing; nothing signed yet)")
    else:
        click.echo(signed.note.rstrip("\n"))


def _checkpoint_json(signed: SignedCheckpoint) -> dict[str, Any]:
    return {
        "tree_size": signed.tree_size,
        "root": signed.root_hash.hex(),
        "signed_at_us": signed.signed_at_us,
        "note": signed.note,
    }


@ledger.command("rotate-key")
@_db_option
@_home_option
@click.option(
    "--reason",
    required=True,
    metavar="TEXT",
    help="Why the key changes (recorded in the ledger), e.g. 'old key retired'.",
)
@reports_errors
def rotate_key(url: str | None, home: Path | None, reason: str) -> None:
    """Sign with the home folder's key from now on, recording the change in the ledger.

    The home's key (created when the home holds none) becomes the ledger's key: a
    `SigningKeyRotated` event names the old and the new verifier key and the reason, and the
    next checkpoint, signed with the new key, covers it. `ledger verify` accepts a change of key
    only at a recorded rotation. Prints the new verifier key: publish it to the auditors.

    \b
    Example:
        unhardcoded ledger rotate-key --home ./new-home --reason "old key retired"
    """

    async def body(led: Ledger) -> str:
        await led.rotate_key(reason)
        return led.public_key()

    click.echo(_run(url, home, body))


@ledger.command()
@click.argument("ref", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print a decision's trace as JSON.")
@click.option("--raw", is_flag=True, help="Print the event's envelope and payload as JSON.")
@_db_option
@_home_option
@reports_errors
def show(ref: str, as_json: bool, raw: bool, url: str | None, home: Path | None) -> None:
    """Print one event (by event id or position); a decision (by its decision id = event id) as
    its full human trace, rebuilt from the ledger alone.

    A decision prints as a readable trace, or with --json as the trace JSON (the shape of
    `unhardcoded rank --json` plus decision_id, tenant, recorded_at, preview, attempts, …).
    Any other event, or any event with --raw, prints as its envelope and payload in JSON.

    \b
    Example:
        unhardcoded ledger show 0 --raw
    """

    from router.services.decisions import DECISION_MADE

    async def body(service: DecisionService) -> tuple[Envelope, Decision | None]:
        envelope = await service.ledger.get(ref)
        if raw or envelope.type != DECISION_MADE:
            return envelope, None
        return envelope, await service.decision_from(envelope)

    envelope, decision = with_service(url, home, body)
    if decision is None:
        _print_json(envelope.to_json())
    elif as_json:
        _print_json(decision.to_json())
    else:
        click.echo(_decision_text(decision))


def _decision_text(decision: Decision) -> str:
    lines = [
        f"decision {decision.decision_id}{' (preview)' if decision.preview else ''}",
        f"tenant   {decision.tenant}",
        f"recorded {decision.to_json()['recorded_at']} at position {decision.position}",
        f"request  {decision.request_digest or '(no request body)'} (body {decision.body})",
        render_table(decision.trace),
    ]
    if decision.attempts:
        lines.append("")
        lines.append(f"attempts ({len(decision.attempts)})")
        for a in decision.attempts:
            outcome = a.status if a.error_class is None else f"{a.status} ({a.error_class})"
            lines.append(f"  {a.number}. {a.entry}: {outcome}, {a.latency_ms:g} ms")
    return "\n".join(lines)


@ledger.command("erase-body")
@click.argument("decision_id", metavar="DECISION_ID")
@_db_option
@_home_option
@reports_errors
def erase_body(decision_id: str, url: str | None, home: Path | None) -> None:
    """Erase the stored request body of a decision for good (GDPR).

    Only the body's SHA-256 is part of the hashed record, so `ledger verify` stays green; the
    decision keeps its request digest and shows `request_body: erased`.

    \b
    Example:
        unhardcoded ledger erase-body 0190f1c2-7d1e-7cc3-a7b1-5d1f6e2b9a10
    """
    with_service(url, home, lambda service: service.erase_request_body(decision_id))
    click.echo(f"erased the request body of decision {decision_id}")


@ledger.command("decisions")
@click.option("--tenant", metavar="NAME", help="Only this tenant's decisions.")
@click.option("--fingerprint", metavar="FP", help="Only decisions under this policy fingerprint.")
@period_options
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--cursor", metavar="CURSOR", help="The next_cursor of the previous page.")
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@_db_option
@_home_option
@reports_errors
def decisions(
    tenant: str | None,
    fingerprint: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
    url: str | None,
    home: Path | None,
) -> None:
    """List recorded decisions in ledger order, filtered and paginated.

    \b
    Example:
        unhardcoded ledger decisions --tenant acme --limit 20
    """
    page = with_service(
        url,
        home,
        lambda service: service.decisions(
            tenant=tenant,
            fingerprint=fingerprint,
            since=since,
            until=until,
            cursor=cursor,
            limit=limit,
        ),
    )
    if as_json:
        _print_json(page.to_json())
        return
    for row in page.decisions:
        doc = row.to_json()
        flag = " preview" if row.preview else ""
        click.echo(
            f"{doc['decision_id']}  {doc['recorded_at']}  {row.tenant}  "
            f"{row.selected or '(no entry passed)'}{flag}"
        )
    if page.next_cursor is not None:
        click.echo(f"next page: --cursor {page.next_cursor}")


@ledger.command()
@click.argument("ref", metavar="ID")
@_db_option
@_home_option
@reports_errors
def proof(ref: str, url: str | None, home: Path | None) -> None:
    """Print the inclusion proof of one event against the latest signed checkpoint, as JSON.

    The output holds the RFC 6962 path, the signed checkpoint note and the verifier key: all
    an auditor needs to check it offline.

    \b
    Example:
        unhardcoded ledger proof 0
    """
    bundle = _run(url, home, lambda led: led.inclusion_proof(ref))
    _print_json(bundle.to_json())
