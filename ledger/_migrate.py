"""Running the alembic migrations from code (floor 2), inside the caller's event loop."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

import migrations
from ledger._store import Store, translate_errors

__all__ = ["alembic_config", "upgrade"]


def alembic_config(url: str | None = None) -> Config:
    """An alembic configuration built in code (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", migrations.SCRIPT_LOCATION)
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(store: Store, revision: str = "head") -> None:
    """Bring the database to `revision`, serialised against concurrent upgrades."""
    with translate_errors():
        async with store.engine.connect() as conn:
            # SQLite: BEGIN IMMEDIATE serialises upgrades; PostgreSQL: a lock per schema.
            conn = await conn.execution_options(ledger_write=True)
            async with conn.begin():
                if not store.is_sqlite:
                    await conn.execute(
                        text(
                            "SELECT pg_advisory_xact_lock("
                            "hashtext('unhardcoded-migrate:' || current_schema()))"
                        )
                    )
                await conn.run_sync(_upgrade, revision)
