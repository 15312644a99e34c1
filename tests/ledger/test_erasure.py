"""GDPR erasure removes the bytes themselves: not only from query results, but from the SQLite
file, its WAL and its shared-memory index, and (PostgreSQL) the table is vacuumed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg
import pytest

from ledger import NewEvent
from tests.conftest import PgSchema
from tests.ledger._backends import Backend, decision

# A small body lives in the row's own page; a large one spills into overflow pages.
SMALL = b'{"messages":[{"role":"user","content":"ERASE-ME-small-7f3a9c"}]}'
LARGE = b'{"messages":[{"role":"user","content":"' + b"ERASE-ME-large-c41d02 " * 900 + b'"}]}'


def _raw_bytes(db: Path) -> bytes:
    """The database file and its -wal and -shm companions, as they are on disk."""
    return b"".join(
        path.read_bytes()
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
        if path.exists()
    )


async def test_sqlite_erasure_leaves_no_copy_in_the_file_or_its_wal(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{db}", None, tmp_path)
    async with backend.open() as led:
        small, large = await led.append(
            [
                NewEvent("DecisionMade", "s", {"d": 1}, {"body": SMALL}),
                NewEvent("DecisionMade", "s", {"d": 2}, {"body": LARGE}),
            ]
        )
        await led.append([decision(i) for i in range(3, 40)])
        await led.sequence()
        raw = _raw_bytes(db)
        assert b"ERASE-ME-small-7f3a9c" in raw  # the check below can fail
        assert b"ERASE-ME-large-c41d02" in raw
        await led.erase_attachment(small.event_id, "body")
        await led.erase_attachment(large.event_id, "body")
        await led.append(decision(40))  # the ledger goes on after the checkpoint
        assert await led.attachment(small.event_id, "body") is None
        assert await led.attachment(large.event_id, "body") is None
        raw = _raw_bytes(db)
        assert b"ERASE-ME" not in raw
        assert large.attachment_digests["body"] == hashlib.sha256(LARGE).digest()
        report = await led.verify()
        assert report.ok, report.problem
        assert report.events == 40
    assert b"ERASE-ME" not in _raw_bytes(db)


@pytest.mark.postgres
async def test_postgres_erasure_vacuums_the_attachment_table(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    backend = Backend("postgres", pg_schema.url, pg_schema.schema, tmp_path)
    async with backend.open() as led:
        (env,) = await led.append(NewEvent("DecisionMade", "s", {"d": 1}, {"body": LARGE}))
        conn = await asyncpg.connect(pg_schema.dsn)
        try:
            stats = (
                "SELECT vacuum_count FROM pg_stat_user_tables "
                "WHERE schemaname = $1 AND relname = 'ledger_attachments'"
            )
            before = await conn.fetchval(stats, pg_schema.schema)
            await led.erase_attachment(env.event_id, "body")
            after = await conn.fetchval(stats, pg_schema.schema)
        finally:
            await conn.close()
        assert after == before + 1
        assert await led.attachment(env.event_id, "body") is None
        report = await led.verify()
        assert report.ok, report.problem
