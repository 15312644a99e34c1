"""The alembic migrations create exactly the tables of `ledger._tables`, run from code without
an alembic.ini, and are idempotent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from ledger import Store, upgrade
from ledger._tables import metadata


def test_migrated_schema_matches_the_table_metadata(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    async def migrate_twice() -> None:
        store = Store(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(store)
            await upgrade(store)
        finally:
            await store.dispose()

    asyncio.run(migrate_twice())
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert context.get_current_revision() == "0001_ledger"
        assert compare_metadata(context, metadata) == []
        triggers = {
            r[0]
            for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='trigger'")
        }
    engine.dispose()
    assert triggers == {
        f"{table}_refuse_{verb}"
        for table in ("ledger_events", "ledger_merkle_nodes", "ledger_checkpoints", "ledger_meta")
        for verb in ("update", "delete")
    }
