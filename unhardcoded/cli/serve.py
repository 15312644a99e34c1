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

from unhardcoded.cli._common import CliError, reports_errors
from unhardcoded.cli._records import db_option, home_option

if TYPE_CHECKING:
    from fastapi import FastAPI

    from unhardcoded.settings import Settings

_LOG_LEVEL_ENV = "UNHARDCODED_LOG_LEVEL"


_WORKER_HEALTHCHECK_S = 60
"""How long uvicorn's supervisor waits for a server process to answer a health-check ping before
it kills the process as hung. The supervisor pings the processes in order, the first one 0.5 s
after they were spawned, and a process answers only once its interpreter has started and
imported uvicorn (the answering thread starts then): 2-2.6 s on two shared cores at load 19,
more under heavier load. With uvicorn's default of 5 s the first process, pinged first, was
killed as "died" on a busy machine and started again; the later ones, pinged after it, had the
time. 60 s still catches a process that really hangs."""

_PRIVATE_BITS = 0o077


def worker_app() -> FastAPI:
    """The app of one server process of `serve --workers N` (settings from the environment)."""
    from unhardcoded.app import configure_logging, create_app

    configure_logging(os.environ.get(_LOG_LEVEL_ENV, "INFO"))
    return create_app()


async def _prepare(settings: Settings) -> None:
    """Everything the server processes would otherwise fail on (or race for) in their start-up,
    checked once, before uvicorn starts, so that a failure is one line: the database (created or
    migrated, refused when it is someone else's), the signing key (a home folder whose key is not
    the ledger's stops `serve` here), the catalog file, the catalog sync's schedule and its
    overlay files."""
    from router.services.catalogs import load_catalog
    from unhardcoded.app import scheduled_sync
    from unhardcoded.db import migrated_ledger

    if settings.catalog is not None:
        load_catalog(str(settings.catalog))
    scheduled_sync(settings)
    async with migrated_ledger(settings.database_url, home=settings.home.expanduser()) as led:
        await led.check_signing_key()


def _warn_if_shared(home: Path) -> None:
    """A warning (in the JSON log) when group or others can read the home folder."""
    import logging

    try:
        mode = home.stat().st_mode & 0o777
    except OSError:
        return
    if mode & _PRIVATE_BITS:
        logging.getLogger("unhardcoded.serve").warning(
            "the home folder %s (signing key) can be read by group or others (mode %04o): "
            "run `chmod 700 %s`",
            home,
            mode,
            home,
        )


class _Terminated:
    """SIGTERM as a normal end: uvicorn drains and shuts down on it, then raises the signal
    again for the handler that was in place before it started; this one only records it, so the
    process ends with status 0 instead of dying of the signal after a clean shutdown."""

    def __init__(self) -> None:
        self.received = False

    def __call__(self, _signum: int, _frame: object) -> None:
        self.received = True


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
@db_option
@home_option
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
    type=click.IntRange(1, 256),
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
    home: Path | None,
    catalog_file: Path | None,
    echo: bool | None,
    log_level: str,
    workers: int,
) -> None:
    """Serve POST /v1/chat/completions, /x/rank, the decision read API, /healthz, /readyz,
    /metrics and /docs.

    With no settings at all it records to ./unhardcoded.db and routes over the bundled catalog.
    Callers authenticate with an API key from `unhardcoded keys create`. Every log line is JSON
    on stderr, uvicorn's included (decision ids, never keys or bodies). $UNHARDCODED_CATALOG_SYNC
    (e.g. `litellm every=1h`) syncs a live catalog source on a schedule (docs/catalog.md). The
    database, signing key, catalog and sync schedule are checked before the server starts: a
    problem is one `error:` line. SIGTERM
    drains the requests in flight and exits with status 0. See docs/gateway.md and
    docs/operations.md.

    \b
    Example:
        unhardcoded serve --echo --port 8000 --db sqlite+aiosqlite:///./unhardcoded.db
        unhardcoded serve --workers 2 --port 8000 --home /var/lib/unhardcoded
    """
    import asyncio

    from unhardcoded.app import configure_logging, create_app, uvicorn_log_config
    from unhardcoded.settings import Settings

    overrides: dict[str, object] = {}
    if url is not None:
        overrides["database_url"] = url
    if home is not None:
        overrides["home"] = home
    if catalog_file is not None:
        overrides["catalog"] = catalog_file
    if echo is not None:
        overrides["echo_all"] = echo
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(log_level.upper())
    _warn_if_shared(settings.home.expanduser())
    asyncio.run(_prepare(settings))
    options: dict[str, object] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "log_config": uvicorn_log_config(log_level.upper()),
        "access_log": False,
        "lifespan": "on",
        "timeout_graceful_shutdown": 5,
    }
    if workers == 1:
        run_server(create_app(settings), options)
        return
    # The processes are fresh interpreters: they read the settings from the environment.
    os.environ["UNHARDCODED_DATABASE_URL"] = settings.database_url
    os.environ["UNHARDCODED_HOME"] = str(settings.home)
    os.environ["UNHARDCODED_ECHO_ALL"] = "1" if settings.echo_all else "0"
    if settings.catalog is not None:
        os.environ["UNHARDCODED_CATALOG"] = str(settings.catalog)
    os.environ[_LOG_LEVEL_ENV] = log_level.upper()
    with _shared_metrics():
        run_server(
            f"{__name__}:worker_app",
            {
                **options,
                "factory": True,
                "workers": workers,
                "timeout_worker_healthcheck": _WORKER_HEALTHCHECK_S,
            },
        )


def run_server(app: object, options: dict[str, object]) -> None:
    """`uvicorn.run(app, **options)` as a service runs: SIGTERM drains and ends with status 0,
    and uvicorn's "did not start" exit (already logged by uvicorn, e.g. the port is in use)
    becomes one `error:` line."""
    import signal

    import uvicorn

    previous = signal.signal(signal.SIGTERM, _Terminated())
    try:
        uvicorn.run(app, **options)  # type: ignore[arg-type]
    except SystemExit as exc:
        if exc.code in (None, 0):
            return
        raise CliError(
            f"the server did not start on {options['host']}:{options['port']} (the reason is "
            "in the log line above)"
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
