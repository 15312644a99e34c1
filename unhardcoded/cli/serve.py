"""`unhardcoded serve`: the OpenAI-compatible gateway over HTTP (uvicorn)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from unhardcoded.cli._common import reports_errors

if TYPE_CHECKING:
    from fastapi import FastAPI

    from unhardcoded.settings import Settings

_LOG_LEVEL_ENV = "UNHARDCODED_LOG_LEVEL"


def worker_app() -> FastAPI:
    """The app of one server process of `serve --workers N` (settings from the environment)."""
    from unhardcoded.app import configure_logging, create_app

    configure_logging(os.environ.get(_LOG_LEVEL_ENV, "INFO"))
    return create_app()


async def _prepare(settings: Settings) -> None:
    """Migrate the database and check the signing key once, before the processes start (they
    would race for both): a home folder whose key is not the ledger's stops `serve` here."""
    from unhardcoded.db import migrated_ledger

    async with migrated_ledger(settings.database_url, home=settings.home.expanduser()) as led:
        await led.check_signing_key()


@contextlib.contextmanager
def _shared_metrics() -> Iterator[None]:
    """A fresh directory where every process counts its metrics, so that `/metrics` sums them
    (prometheus_client's multiprocess mode), removed at exit. A directory already given in
    `$PROMETHEUS_MULTIPROC_DIR` is used as it is (emptying it between runs is then the
    operator's job)."""
    from router.services.gateway import MULTIPROCESS_DIR_ENV

    if os.environ.get(MULTIPROCESS_DIR_ENV):
        yield
        return
    made = tempfile.mkdtemp(prefix="unhardcoded-metrics-")
    os.environ[MULTIPROCESS_DIR_ENV] = made
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR_ENV]
        shutil.rmtree(made, ignore_errors=True)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--db",
    "url",
    metavar="URL",
    help="Database URL (default: $UNHARDCODED_DATABASE_URL, else ./unhardcoded.db); migrated "
    "on start.",
)
@click.option(
    "--catalog",
    "catalog_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Catalog JSON file (default: $UNHARDCODED_CATALOG, else the latest published version, "
    "else the bundled catalog).",
)
@click.option(
    "--echo",
    is_flag=True,
    default=None,
    help="Send every attempt to the local echo provider (NOT a real model; no keys needed). "
    "Also $UNHARDCODED_ECHO_ALL=1.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server processes, each with its own event loop, sharing the database (one per core "
    "for throughput); /metrics sums all of them.",
)
@reports_errors
def serve(
    host: str,
    port: int,
    url: str | None,
    catalog_file: Path | None,
    echo: bool | None,
    log_level: str,
    workers: int,
) -> None:
    """Serve POST /v1/chat/completions, /x/rank, the decision read API, /metrics and /docs.

    With no settings at all it records to ./unhardcoded.db and routes over the bundled catalog.
    Callers authenticate with an API key from `unhardcoded keys create`. Logs are JSON lines on
    stderr (decision ids, never keys or bodies). See docs/gateway.md.

    \b
    Example:
        unhardcoded serve --echo --port 8000 --db sqlite+aiosqlite:///./unhardcoded.db
        unhardcoded serve --workers 2 --port 8000
    """
    import asyncio

    import uvicorn

    from unhardcoded.app import configure_logging, create_app
    from unhardcoded.settings import Settings

    overrides: dict[str, object] = {}
    if url is not None:
        overrides["database_url"] = url
    if catalog_file is not None:
        overrides["catalog"] = catalog_file
    if echo is not None:
        overrides["echo_all"] = echo
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(log_level.upper())
    options: dict[str, object] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
    }
    if workers == 1:
        uvicorn.run(create_app(settings), **options)  # type: ignore[arg-type]
        return
    asyncio.run(_prepare(settings))
    # The processes are fresh interpreters: they read the settings from the environment.
    os.environ["UNHARDCODED_DATABASE_URL"] = settings.database_url
    os.environ["UNHARDCODED_ECHO_ALL"] = "1" if settings.echo_all else "0"
    if settings.catalog is not None:
        os.environ["UNHARDCODED_CATALOG"] = str(settings.catalog)
    os.environ[_LOG_LEVEL_ENV] = log_level.upper()
    with _shared_metrics():
        uvicorn.run(
            f"{__name__}:worker_app",
            factory=True,
            workers=workers,
            **options,  # type: ignore[arg-type]
        )
