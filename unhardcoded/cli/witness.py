"""`unhardcoded witness …`: run an independent witness that cosigns a ledger's checkpoints
(c2sp.org/tlog-witness v1; docs/witness.md)."""

from __future__ import annotations

from pathlib import Path

import click

from unhardcoded.cli._common import reports_errors

_DEFAULT_FOLDER = "~/.unhardcoded-witness"


def _folder_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--dir",
        "folder",
        type=click.Path(file_okay=False, path_type=Path),
        default=_DEFAULT_FOLDER,
        show_default=True,
        envvar="UNHARDCODED_WITNESS_DIR",
        help="The witness's state folder: its key and database (also $UNHARDCODED_WITNESS_DIR).",
    )(func)


@click.group()
def witness() -> None:
    """An independent witness: cosigns a log's checkpoint only when it is consistent with the
    last one it cosigned, so a log cannot show two histories or rewrite its past unseen.

    \b
    Example:
        unhardcoded witness init --name witness.example/w1 --log "$(cat ledger.pub)"
    """


@witness.command()
@click.option("--name", required=True, help="The witness's key name, e.g. witness.example/w1.")
@click.option(
    "--log",
    "logs",
    metavar="VKEY",
    multiple=True,
    help="A log to witness: its checkpoint verifier key (repeatable; the origin is the key "
    "name). More later with `witness add-log`.",
)
@_folder_option
@reports_errors
def init(name: str, logs: tuple[str, ...], folder: Path) -> None:
    """Create the witness: a new Ed25519 key and an empty SQLite database in its folder (mode
    0700, files 0600). Prints the witness's public key (vkey) to hand to the log operator and to
    auditors.

    \b
    Example:
        unhardcoded witness init --name witness.example/w1 --dir ./w1 --log "$(cat ledger.pub)"
    """
    from router.services.witness import Witness

    created = Witness.init(folder, name)
    for key in logs:
        created.add_log(key)
    click.echo(created.verifier_key())


@witness.command("add-log")
@click.argument("vkey")
@click.option("--origin", help="The log's origin line (default: the key name).")
@_folder_option
@reports_errors
def add_log(vkey: str, origin: str | None, folder: Path) -> None:
    """Witness one more log, given by its checkpoint verifier key VKEY.

    \b
    Example:
        unhardcoded witness add-log "$(cat ledger.pub)" --dir ./w1
    """
    from router.services.witness import Witness

    click.echo(f"witnessing {Witness(folder).add_log(vkey, origin)}")


@witness.command()
@_folder_option
@reports_errors
def key(folder: Path) -> None:
    """Print the witness's public key (a C2SP vkey with signature type 0x04).

    \b
    Example:
        unhardcoded witness key --dir ./w1
    """
    from router.services.witness import Witness

    click.echo(Witness(folder).verifier_key())


@witness.command()
@_folder_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8100, show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@reports_errors
def serve(folder: Path, host: str, port: int, log_level: str) -> None:
    """Serve POST /add-checkpoint (c2sp.org/tlog-witness v1) over the witness's state: verify
    the log's signature and the consistency proof from the last cosigned size, record the new
    checkpoint durably, answer with the cosignature line; refuse a smaller or inconsistent tree
    (409, 422) and keep it as evidence.

    \b
    Example:
        unhardcoded witness serve --dir ./w1 --port 8100
    """
    import uvicorn

    from unhardcoded.app import create_witness_app

    uvicorn.run(
        create_witness_app(folder),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=5,
    )
