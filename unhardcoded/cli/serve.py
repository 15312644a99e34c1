"""`unhardcoded serve`: the OpenAI-compatible gateway over HTTP (uvicorn)."""

from __future__ import annotations

from pathlib import Path

import click

from unhardcoded.cli._common import reports_errors
from unhardcoded.settings import Settings


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
@reports_errors
def serve(
    host: str,
    port: int,
    url: str | None,
    catalog_file: Path | None,
    echo: bool | None,
    log_level: str,
) -> None:
    """Serve POST /v1/chat/completions, /x/rank, the decision read API, /metrics and /docs.

    With no settings at all it records to ./unhardcoded.db and routes over the bundled catalog.
    Callers authenticate with an API key from `unhardcoded keys create`. Logs are JSON lines on
    stderr (decision ids, never keys or bodies). See docs/gateway.md.

    \b
    Example:
        unhardcoded serve --echo --port 8000 --db sqlite+aiosqlite:///./unhardcoded.db
    """
    import uvicorn

    from unhardcoded.app import configure_logging, create_app

    overrides: dict[str, object] = {}
    if url is not None:
        overrides["database_url"] = url
    if catalog_file is not None:
        overrides["catalog"] = catalog_file
    if echo is not None:
        overrides["echo_all"] = echo
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(log_level.upper())
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
