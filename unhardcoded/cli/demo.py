"""`unhardcoded demo`: the whole product end to end on embedded defaults (see unhardcoded._demo)."""

from __future__ import annotations

from pathlib import Path

import click

from unhardcoded.cli._common import EXIT_BAD_INPUT, reports_errors


@click.command("demo")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="New or empty folder for everything the demo makes (default: a new temporary folder).",
)
@click.option(
    "--requests",
    type=click.IntRange(4, 100_000),
    default=200,
    show_default=True,
    help="Chat completions to send through the gateway (spread over the four tenants).",
)
@click.option(
    "--client",
    type=click.Choice(["auto", "openai", "httpx"]),
    default="auto",
    show_default=True,
    help="HTTP client: the official openai package when installed (auto), else httpx.",
)
@reports_errors
def demo(folder: Path | None, requests: int, client: str) -> None:
    """Run the whole product on a SQLite file, the bundled catalog and the local echo provider.

    Starts the real gateway on a free loopback port, serves four tenants (free-tier, vip,
    enterprise-eu, regulated: one API key and one example policy each) with REQUESTS chat
    completions over HTTP (a tenth of them streamed), publishes a catalog where one model's
    prices went up, replays every decision (--mode original proves each one; --against latest
    shows what the price change moves), exports Parquet, writes a compliance report and an
    audit bundle for tenant regulated, verifies the bundle offline and the whole ledger, and
    prints where everything is and the commands to look further. Output is deterministic
    except lines marked "(differs per run)".

    \b
    Example:
        unhardcoded demo --dir demo --requests 40
    """
    from unhardcoded._demo import DemoError, run_demo

    try:
        run_demo(folder, requests, client=client, echo=click.echo)
    except DemoError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
