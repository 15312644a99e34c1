"""The append transaction of one group-commit batch, per backend (floor 2).

This is the hot path, so it talks to the DBAPI driver directly, with the statements below, in as
few round trips as the lock discipline allows (lock, head, stream versions, inserts, commit):

- SQLite: the stdlib `sqlite3` driver (the one aiosqlite wraps) on a dedicated writer thread, the
  whole transaction in ONE hop to that thread. Through aiosqlite every statement is a hop, and
  each hop waits for the GIL while producers are busy: that cost more than the fsync.
- PostgreSQL: one asyncpg connection held from SQLAlchemy's pool, four round trips a batch.

Errors are translated by `translate_errors`, the one place that does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ledger._committer import Request, assign
from ledger._store import (
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_SECURE_DELETE,
    Store,
    enable_wal,
    translate_errors,
)

__all__ = ["make_writer"]

_COLUMNS = (
    "position, event_id, type, stream_id, stream_version, recorded_at_us, payload, "
    "payload_digest, attachments, prev_hash, chain_hash, leaf_hash"
)
_HEAD = "SELECT position, chain_hash FROM ledger_events ORDER BY position DESC LIMIT 1"
_SQLITE_ROWS = 32
"""Rows per INSERT statement: one multi-row statement costs ~20% less per row than executemany."""
_SQLITE_INSERTS = [
    f"INSERT INTO ledger_events ({_COLUMNS}) VALUES " + ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?)"] * n)
    for n in range(_SQLITE_ROWS + 1)
]
_SQLITE_BLOB = "INSERT INTO ledger_attachments (position, name, digest, content) VALUES (?,?,?,?)"
_PG_INSERT = (
    f"INSERT INTO ledger_events ({_COLUMNS}) VALUES ({', '.join(f'${i}' for i in range(1, 13))})"
)
_PG_BLOB = "INSERT INTO ledger_attachments (position, name, digest, content) VALUES ($1,$2,$3,$4)"
# One index probe per stream (max() with the stream id fixed walks the unique index backwards);
# a GROUP BY over the streams would scan every event of each stream.
_SQLITE_VERSION = "SELECT max(stream_version) FROM ledger_events WHERE stream_id = ?"
_PG_BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(%d)"
# Everything the batch needs to know under the lock, in one round trip: the head (kind 0), the
# version of each stream of the batch (kind 1) and which of the given event ids exist (kind 2).
_PG_STATE = (
    "SELECT 0, h.position, h.chain_hash, NULL::text FROM "
    "(SELECT position, chain_hash FROM ledger_events ORDER BY position DESC LIMIT 1) AS h "
    "UNION ALL SELECT 1, (SELECT max(stream_version) FROM ledger_events WHERE stream_id = s), "
    "NULL::bytea, s FROM unnest($1::text[]) AS s "
    "UNION ALL SELECT 2, NULL::bigint, event_id, NULL::text FROM ledger_events "
    "WHERE event_id = ANY($2::bytea[])"
)


def _streams_and_ids(requests: Sequence[Request]) -> tuple[list[str], list[bytes]]:
    streams = list({p.stream_id for r in requests for p in r.events})
    given = [p.event_id for r in requests for p in r.events if p.id_given]
    return streams, given


class SqliteWriter:
    """Runs each batch's transaction on one dedicated thread with its own sqlite3 connection
    (the event loop never waits for the database lock or the fsync)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-sqlite-writer")
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path,
                isolation_level=None,
                check_same_thread=False,
                timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
            )
            try:
                enable_wal(conn.execute)
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                conn.execute(SQLITE_SECURE_DELETE)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @staticmethod
    def _transaction(conn: sqlite3.Connection, requests: Sequence[Request]) -> None:
        """The batch's statements after `BEGIN IMMEDIATE`, through COMMIT (ROLLBACK on error)."""
        try:
            head = conn.execute(_HEAD).fetchone()
            streams, given = _streams_and_ids(requests)
            versions: dict[str, int] = {}
            for stream_id in streams:
                (last,) = conn.execute(_SQLITE_VERSION, (stream_id,)).fetchone()
                if last is not None:
                    versions[stream_id] = last
            taken: set[bytes] = set()
            if given:
                marks = ",".join("?" * len(given))
                found = conn.execute(
                    f"SELECT event_id FROM ledger_events WHERE event_id IN ({marks})", given
                )
                taken.update(row[0] for row in found)
            rows, blobs = assign(requests, head, versions, taken, time.time_ns() // 1000)
            for start in range(0, len(rows), _SQLITE_ROWS):
                chunk = rows[start : start + _SQLITE_ROWS]
                conn.execute(_SQLITE_INSERTS[len(chunk)], [v for row in chunk for v in row])
            if blobs:
                conn.executemany(_SQLITE_BLOB, blobs)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _write(self, requests: Sequence[Request]) -> None:
        with translate_errors():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            self._transaction(conn, requests)

    def __call__(self, requests: Sequence[Request]) -> asyncio.Future[None]:
        # A plain function, not a coroutine: the batch reaches the writer thread right now, not
        # at the event loop's next turn (after every producer that is ready to run).
        return asyncio.get_running_loop().run_in_executor(self._executor, self._write, requests)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Close the connection (on its thread) and stop the thread."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)


class PgWriter:
    """Runs each batch's transaction on one asyncpg connection held from the store's pool.

    Four round trips per batch: BEGIN with the lock (one simple query), the state query, the
    pipelined inserts, COMMIT. (`connection.transaction()`, separate lock/head/version queries
    and a pool checkout per batch were seven, and each costs ~1 ms on a loaded machine.) After
    any failure the connection is given back to the pool as invalid and the next batch takes a
    fresh one, so a broken or half-used connection never carries over.
    """

    def __init__(self, store: Store) -> None:
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
                await pg.execute(_PG_BEGIN % self._store.write_lock_key)
                streams, given = _streams_and_ids(requests)
                head: tuple[int, bytes] | None = None
                versions: dict[str, int] = {}
                taken: set[bytes] = set()
                for kind, number, raw, stream_id in await pg.fetch(_PG_STATE, streams, given):
                    if kind == 0:
                        head = (number, raw)
                    elif kind == 1:
                        if number is not None:
                            versions[stream_id] = number
                    else:
                        taken.add(raw)
                rows, blobs = assign(requests, head, versions, taken, time.time_ns() // 1000)
                if rows:
                    await pg.executemany(_PG_INSERT, rows)
                if blobs:
                    await pg.executemany(_PG_BLOB, blobs)
                await pg.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):  # the batch's own error is the one to report
                    await self._drop()
                raise

    async def close(self) -> None:
        """Give the held connection back to the pool."""
        conn, self._conn, self._pg = self._conn, None, None
        if conn is not None:
            with translate_errors():
                await conn.close()


def make_writer(store: Store) -> SqliteWriter | PgWriter:
    """The batch writer for the store's backend."""
    if store.is_sqlite:
        return SqliteWriter(store.url.database or "")
    return PgWriter(store)
