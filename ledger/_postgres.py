"""The PostgreSQL backend (floor 2): `synchronous_commit=on`, `pg_advisory_xact_lock` keyed by
the ledger id as the ledger-wide write lock, REPEATABLE READ snapshots for reads, and a sequencer
elected with `pg_try_advisory_xact_lock`, so appends go on while the tree is extended.

Appends are the hot path: the batch writer holds one asyncpg connection from SQLAlchemy's pool
and needs four round trips a batch (BEGIN with the lock, the state query, the pipelined inserts,
COMMIT).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pyarrow as pa
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from ledger._batches import PageQuery, to_batch
from ledger._committer import Request, assign
from ledger._proofread import EVENT_AND_HEAD, plan_of, proof_read
from ledger._store import ProofRead, Store, translate_errors
from ledger._tables import events
from ledger._treestore import Integrated, nodes_query, numbered, write_batch
from ledger._verify import Source

__all__ = ["PgWriter", "PostgresStore"]

_COLUMNS = ", ".join(events.columns.keys())
_INSERT = (
    f"INSERT INTO ledger_events ({_COLUMNS}) VALUES ({', '.join(f'${i}' for i in range(1, 13))})"
)
_BLOB = "INSERT INTO ledger_attachments (position, name, digest, content) VALUES ($1,$2,$3,$4)"
_BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(%d)"
# Everything the batch needs to know under the lock, in one round trip: the head (kind 0), the
# version of each stream of the batch (kind 1) and which of the given event ids exist (kind 2).
_STATE = (
    "SELECT 0, h.position, h.chain_hash, h.recorded_at_us::text FROM "
    "(SELECT position, chain_hash, recorded_at_us FROM ledger_events "
    "ORDER BY position DESC LIMIT 1) AS h "
    "UNION ALL SELECT 1, (SELECT max(stream_version) FROM ledger_events WHERE stream_id = s), "
    "NULL::bytea, s FROM unnest($1::text[]) AS s "
    "UNION ALL SELECT 2, NULL::bigint, event_id, NULL::text FROM ledger_events "
    "WHERE event_id = ANY($2::bytea[])"
)


class PgWriter:
    """Runs each batch's transaction on one asyncpg connection held from the store's pool.

    (`connection.transaction()`, separate lock/head/version queries and a pool checkout per batch
    were seven round trips, and each costs ~1 ms on a loaded machine.) After any failure the
    connection is given back to the pool as invalid and the next batch takes a fresh one, so a
    broken or half-used connection never carries over.
    """

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._conn: AsyncConnection | None = None
        self._pg: Any = None

    async def _connection(self) -> Any:
        if self._pg is None:
            conn = await self._store.engine.connect()
            try:
                self._pg = (await conn.get_raw_connection()).driver_connection
            except BaseException:
                await conn.close()
                raise
            self._conn = conn
        return self._pg

    async def _drop(self) -> None:
        conn, self._conn, self._pg = self._conn, None, None
        if conn is not None:
            try:
                await conn.invalidate()
            finally:
                await conn.close()

    async def __call__(self, requests: Sequence[Request]) -> None:
        with translate_errors():
            pg = await self._connection()
            try:
                # READ COMMITTED: the state query's snapshot is taken after the lock is granted.
                await pg.execute(_BEGIN % self._store.lock_key("append"))
                streams = list({p.stream_id for r in requests for p in r.events})
                given = [p.event_id for r in requests for p in r.events if p.id_given]
                head: tuple[int, bytes, int] | None = None
                versions: dict[str, int] = {}
                taken: set[bytes] = set()
                for kind, number, raw, stream_id in await pg.fetch(_STATE, streams, given):
                    if kind == 0:
                        head = (number, raw, int(stream_id))
                    elif kind == 1:
                        if number is not None:
                            versions[stream_id] = number
                    else:
                        taken.add(raw)
                rows, blobs = assign(requests, head, versions, taken, time.time_ns() // 1000)
                if rows:
                    await pg.executemany(_INSERT, rows)
                if blobs:
                    await pg.executemany(_BLOB, blobs)
                await pg.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):  # the batch's own error is the one to report
                    await self._drop()
                raise

    async def write_tree(self, done: Integrated) -> bool:
        """Insert a sequenced batch in a transaction of its own (not on the append connection,
        and without the append lock: appends never wait for it)."""
        with translate_errors():
            async with self._store.engine.begin() as conn:
                return await write_batch(conn, done)

    async def close(self) -> None:
        """Give the held connection back to the pool."""
        conn, self._conn, self._pg = self._conn, None, None
        if conn is not None:
            with translate_errors():
                await conn.close()


class PostgresStore(Store):
    """The ledger in a PostgreSQL database (`postgresql+asyncpg://…`); `search_path` puts its
    tables in that schema."""

    def __init__(self, url: URL, *, search_path: str | None = None) -> None:
        settings = {"synchronous_commit": "on"}
        if search_path:
            settings["search_path"] = search_path
        with translate_errors():
            engine = create_async_engine(url, connect_args={"server_settings": settings})
        super().__init__(url, engine)

    async def exists(self) -> bool:
        return True  # a missing database is an error on connecting

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        with translate_errors():
            async with self.engine.connect() as conn:
                await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
                yield conn

    @asynccontextmanager
    async def locked(self, purpose: str) -> AsyncIterator[AsyncConnection]:
        with translate_errors():
            async with self.engine.begin() as conn:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.lock_key(purpose)}
                )
                yield conn

    def write(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return self.locked("append")  # the batch writer takes the same lock

    @asynccontextmanager
    async def sequencer(self) -> AsyncIterator[bool]:
        # The election's transaction stays open (idle) for the pass; appends take another key.
        with translate_errors():
            async with self.engine.begin() as conn:
                got = await conn.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self.lock_key("sequence")}
                )
                yield bool(got)

    def writer(self) -> PgWriter:
        return PgWriter(self)

    async def read_inclusion(self, column: str, value: object) -> ProofRead | None:
        with translate_errors():
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                pg: Any = raw.driver_connection
                async with pg.transaction(isolation="repeatable_read", readonly=True):
                    row = await pg.fetchrow(numbered(EVENT_AND_HEAD.format(column=column)), value)
                    if row is None:
                        return None
                    found, plan = plan_of(row)
                    rows = []
                    if plan and plan.nodes:
                        sql, params = nodes_query(plan.nodes)
                        rows = await pg.fetch(numbered(sql), *params)
                    return proof_read(found, plan, rows)

    async def read_columns(self, query: PageQuery, start: int, limit: int) -> pa.RecordBatch:
        with translate_errors():
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                pg: Any = raw.driver_connection
                rows = await pg.fetch(query.sql, *query.params(start, limit))
        return to_batch(rows)

    async def verify_source(self, conn: AsyncConnection) -> Source:
        return Source(
            dsn=self.url.set(drivername="postgresql").render_as_string(hide_password=False),
            search_path=await conn.scalar(text("SELECT current_setting('search_path')")),
            snapshot=await conn.scalar(text("SELECT pg_export_snapshot()")),
        )

    async def purge_erased(self, table: str) -> None:
        """A plain VACUUM of the table (outside any transaction) prunes the dead row versions;
        docs/ledger.md says what it does not reach (WAL segments, backups)."""
        with translate_errors():
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                pg: Any = raw.driver_connection
                await pg.execute(f'VACUUM "{table}"')
