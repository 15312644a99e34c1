"""`unhardcoded ledger …`: verify, sequence and sign, show events, serve proofs."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ledger import Ledger, open_ledger
from unhardcoded.cli._common import reports_errors
from unhardcoded.settings import Settings

T = TypeVar("T")

EXIT_TAMPERED = 1

_db_option = click.option(
    "--db",
    "url",
    metavar="URL",
    help="Database URL (default: $UNHARDCODED_DATABASE_URL, else ./unhardcoded.db).",
)
_home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the signing key (default: $UNHARDCODED_HOME, else ~/.unhardcoded).",
)


def _run(url: str | None, home: Path | None, body: Callable[[Ledger], Awaitable[T]]) -> T:
    settings = Settings()

    async def main() -> T:
        target = url or settings.database_url
        async with open_ledger(target, home=home or settings.home, migrate=False) as led:
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


@ledger.command()
@_db_option
@_home_option
@click.option("--chunk", default=50_000, show_default=True, help="Events read per query.")
@click.option(
    "--trust-key",
    "trusted",
    multiple=True,
    metavar="VKEY",
    help="Accept only checkpoints signed by these verifier keys (repeatable).",
)
@reports_errors
def verify(url: str | None, home: Path | None, chunk: int, trusted: tuple[str, ...]) -> None:
    """Recompute every digest, the hash chain, the Merkle tree and every checkpoint signature.

    Exit 0 when intact; exit 1 naming the first bad position otherwise.

    \b
    Example:
        unhardcoded ledger verify --db sqlite+aiosqlite:///./unhardcoded.db
    """
    report = _run(url, home, lambda led: led.verify(chunk=chunk, trusted_keys=trusted or None))
    if report.problem is not None:
        click.echo(f"ledger TAMPERED: {report.problem}", err=True)
        sys.exit(EXIT_TAMPERED)
    root = report.root_hash.hex() if report.root_hash else "(empty)"
    click.echo(
        f"ledger intact: {report.events} events, {report.checkpoints} signed checkpoints, "
        f"root {root}"
    )


@ledger.command()
@_db_option
@_home_option
@click.option("--public-key", is_flag=True, help="Only print this ledger's verifier key.")
@reports_errors
def checkpoint(url: str | None, home: Path | None, public_key: bool) -> None:
    """Sequence every new event into the Merkle tree, sign a checkpoint and print its note.

    \b
    Example:
        unhardcoded ledger checkpoint --db sqlite+aiosqlite:///./unhardcoded.db
        unhardcoded ledger checkpoint --public-key
    """

    async def body(led: Ledger) -> str:
        if public_key:
            return led.public_key()
        signed = await led.sequence()
        if signed is None:
            signed = await led.latest_checkpoint()
        if signed is None:
            return "(another process is sequencing; nothing signed yet)"
        return signed.note.rstrip("\n")

    click.echo(_run(url, home, body))


@ledger.command()
@click.argument("ref", metavar="ID")
@_db_option
@_home_option
@reports_errors
def show(ref: str, url: str | None, home: Path | None) -> None:
    """Print one event (by event id or position): its envelope and payload, as JSON.

    \b
    Example:
        unhardcoded ledger show 0
    """
    envelope = _run(url, home, lambda led: led.get(ref))
    _print_json(envelope.to_json())


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
