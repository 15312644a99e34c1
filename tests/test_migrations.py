"""The alembic migrations create exactly the tables the packages declare (`ledger._tables` and
the services' projections), run from code without an alembic.ini, and are idempotent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine

from migrations import target_metadata
from unhardcoded.db import alembic_config, upgrade


def _all_tables() -> MetaData:
    combined = MetaData()
    for metadata in target_metadata():
        for table in metadata.tables.values():
            table.to_metadata(combined)
    return combined


def test_migrated_schema_matches_the_table_metadata(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    async def migrate_twice() -> None:
        await upgrade(f"sqlite+aiosqlite:///{path}")
        await upgrade(f"sqlite+aiosqlite:///{path}")

    asyncio.run(migrate_twice())
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn)
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert context.get_current_revision() == head
        assert compare_metadata(context, _all_tables()) == []
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
