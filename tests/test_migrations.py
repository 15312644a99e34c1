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


def test_the_decision_sequence_column_is_filled_from_the_ledger(tmp_path: Path) -> None:
    """0006 adds `decision_index.sequence` and fills it for the decisions projected already:
    the tenant's version for a sequenced decision, null for one of release 0.1.0."""
    from alembic import command

    from router.services.decisions import DecisionService, catch_up
    from tests.reports.support import populate
    from unhardcoded.db import migrated_ledger

    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"

    async def record() -> None:
        async with migrated_ledger(url, home=tmp_path / "home") as led:
            await populate(DecisionService(led), rounds=1)
            await catch_up(led)

    asyncio.run(record())
    command.downgrade(alembic_config(url), "0005_idempotency")
    asyncio.run(upgrade(url))
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT tenant, sequence FROM decision_index ORDER BY position"
        ).all()
    engine.dispose()
    acme = [sequence for tenant, sequence in rows if tenant == "acme"]
    assert acme == [1, 2, 3, 4]
