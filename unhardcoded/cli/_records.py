"""What the commands that read or write the decision record share: `--db`, `--home`, opening the
ledger with a `DecisionService`, and the default catalog (docs/architecture.md, "The composition
root")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

from unhardcoded._defaults import DEFAULT_DATABASE_FILE

if TYPE_CHECKING:
    from router.core import Catalog
    from router.services.decisions import DecisionService

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., object])

DATABASE_URL_ENV = "UNHARDCODED_DATABASE_URL"


def db_option(func: F) -> F:
    """`--db URL` (default: $UNHARDCODED_DATABASE_URL, else ./unhardcoded.db).

    Click reads the environment variable (as `--catalog` reads `$UNHARDCODED_CATALOG`), so a
    command that only needs to know whether the default SQLite file exists does not build the
    settings."""
    return click.option(
        "--db",
        "url",
        metavar="URL",
        envvar=DATABASE_URL_ENV,
        help="Database URL (default: $UNHARDCODED_DATABASE_URL, else ./unhardcoded.db).",
    )(func)


def home_option(func: F) -> F:
    """`--home DIR` (the signing key's folder)."""
    return click.option(
        "--home",
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder of the signing key (default: $UNHARDCODED_HOME, else ~/.unhardcoded).",
    )(func)


def with_service(
    url: str | None, home: Path | None, body: Callable[[DecisionService], Awaitable[T]]
) -> T:
    """Run `body` with a `DecisionService` on the ledger at `url` (settings apply)."""
    import asyncio

    from router.services.decisions import DecisionService
    from unhardcoded.db import migrated_ledger
    from unhardcoded.settings import Settings

    settings = Settings()

    async def main() -> T:
        async with migrated_ledger(url or settings.database_url, home=home or settings.home) as led:
            service = DecisionService(led, store_request_bodies=settings.store_request_bodies)
            return await body(service)

    return asyncio.run(main())


def _absent_sqlite_file(url: str | None) -> bool:
    if url is None:  # neither --db nor $UNHARDCODED_DATABASE_URL: the default SQLite file
        return not Path(DEFAULT_DATABASE_FILE).exists()
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return False
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return database in ("", ":memory:") or not Path(database).exists()


async def default_catalog(service: DecisionService | None) -> Catalog:
    """The latest published catalog version, else the bundled one."""
    from router.services.catalogs import bundled_catalog

    latest = None if service is None else await service.latest_catalog()
    return latest if latest is not None else bundled_catalog()


def resolve_catalog(catalog_file: str | None, url: str | None, home: Path | None) -> Catalog:
    """`--catalog FILE` if given, else the latest published version, else the bundled catalog.

    A SQLite database file that does not exist has no published version: it is not created just
    to look."""
    from router.services.catalogs import bundled_catalog, load_catalog

    if catalog_file is not None:
        return load_catalog(catalog_file)
    if _absent_sqlite_file(url):
        return bundled_catalog()
    return with_service(url, home, default_catalog)
