"""The deployment's database: the engine the services beside the ledger share, and `upgrade()`,
which runs every package's migrations.

Each package owns its tables (the ledger its `ledger_*` tables, `router.services.decisions` the
projection, `router.services.gateway` the API keys); the migrations create them all, and only this
composition root runs them. `ledger.open_ledger` never migrates: it refuses a database that
`upgrade` has not brought to head.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import migrations
from ledger import Ledger, open_ledger, open_store

__all__ = ["UnusableDatabaseError", "alembic_config", "create_engine", "migrated_ledger", "upgrade"]

_SQLITE_BUSY_TIMEOUT_S = 60.0
"""How long a write waits for SQLite's writer lock, as long as the ledger's own writes wait."""


def alembic_config(url: str | None = None) -> Config:
    """An alembic configuration built in code (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", migrations.SCRIPT_LOCATION)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


# A database holding any of these is this project's (or an older version of it).
_OWN_TABLES = frozenset(
    {"alembic_version"}
    | {name for tables in migrations.target_metadata() for name in tables.tables}
)


class UnusableDatabaseError(ValueError):
    """The database given cannot be ours: someone else's, or a SQLite file that cannot be
    created. Nothing was written to it."""


def _refuse_missing_sqlite_folder(url: str) -> None:
    """A SQLite file whose folder does not exist cannot be created: say so before connecting
    (the driver's own message is "unable to open database file")."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # the store reports a malformed URL itself
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return
    folder = Path(database).parent
    if not folder.is_dir():
        raise UnusableDatabaseError(
            f"cannot create the database {database}: the folder {folder} does not exist"
        )


def _refuse_foreign(connection: Connection) -> None:
    """A database whose tables are all someone else's is not migrated by accident."""
    tables = set(inspect(connection).get_table_names())
    if tables and not tables & _OWN_TABLES:
        shown = connection.engine.url.render_as_string(hide_password=True)
        listed = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise UnusableDatabaseError(
            f"{shown} is not an unhardcoded database (it holds other tables: {listed}); "
            f"use a new database, or add the ledger's tables to this one on purpose with "
            f"`unhardcoded db upgrade --db {shown}`"
        )


def _upgrade(connection: Connection, revision: str, adopt: bool) -> None:
    if not adopt:
        _refuse_foreign(connection)
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(
    url: str, *, search_path: str | None = None, revision: str = "head", adopt: bool = False
) -> None:
    """Bring the database at `url` to `revision`, serialised against concurrent upgrades.

    It runs on the ledger's store, whose write transaction is the lock (SQLite: `BEGIN
    IMMEDIATE`; PostgreSQL: an advisory lock); database errors are `ledger.LedgerError`s. A
    database holding only other tables is refused (`UnusableDatabaseError`) unless `adopt` is
    set (`unhardcoded db upgrade` adds the tables on purpose), and so is a SQLite file whose
    folder does not exist.
    """
    _refuse_missing_sqlite_folder(url)
    store = open_store(url, search_path=search_path)
    try:
        async with store.locked("migrate") as conn:
            await conn.run_sync(_upgrade, revision, adopt)
    finally:
        await store.dispose()


def create_engine(url: str, *, search_path: str | None = None) -> AsyncEngine:
    """An engine on the database at `url` for the services' own tables beside the ledger (the
    API keys). `search_path` (PostgreSQL) is the schema `upgrade` migrated."""
    if url.startswith("sqlite"):
        return create_async_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_S})
    settings = {"search_path": search_path} if search_path else {}
    return create_async_engine(url, connect_args={"server_settings": settings})


@asynccontextmanager
async def migrated_ledger(
    url: str, *, home: Path | str | None = None, search_path: str | None = None, **options: Any
) -> AsyncIterator[Ledger]:
    """`upgrade` the database at `url`, then `ledger.open_ledger` it (`options` go to it): what
    every command and the app do on the database they were given."""
    await upgrade(url, search_path=search_path)
    async with open_ledger(url, home=home, search_path=search_path, **options) as ledger:
        yield ledger
