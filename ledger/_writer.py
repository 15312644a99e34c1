"""The append transaction of one group-commit batch, per backend (floor 2).

This is the hot path, so it talks to the DBAPI driver directly, with the statements below, in as
few round trips as the lock discipline allows (lock, head, stream versions, inserts, commit):

- SQLite: the stdlib `sqlite3` driver (the one aiosqlite wraps) on a dedicated writer thread, the
  whole transaction in ONE hop to that thread. Through aiosqlite every statement is a hop, and
  each hop waits for the GIL while producers are busy: that cost more than the fsync.
- PostgreSQL: the asyncpg connection under SQLAlchemy's pool, with `executemany` pipelining.

Errors are translated by `translate_errors`, the one place that does it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ledger._committer import Request, assign
from ledger._store import SQLITE_BUSY_TIMEOUT_MS, SQLITE_SECURE_DELETE, Store, translate_errors

__all__ = ["make_writer"]

_COLUMNS = (
    "position, event_id, type, stream_id, stream_version, recorded_at_us, payload, "
    "payload_digest, attachments, prev_hash, chain_hash, leaf_hash"
)
_HEAD = "SELECT position, chain_hash FROM ledger_events ORDER BY position DESC LIMIT 1"
_SQLITE_INSERT = f"INSERT INTO ledger_events ({_COLUMNS}) VALUES ({', '.join('?' * 12)})"
_SQLITE_BLOB = "INSERT INTO ledger_attachments (position, name, digest, content) VALUES (?,?,?,?)"
_PG_INSERT = (
    f"INSERT INTO ledger_events ({_COLUMNS}) VALUES ({', '.join(f'${i}' for i in range(1, 13))})"
)
_PG_BLOB = "INSERT INTO ledger_attachments (position, name, digest, content) VALUES ($1,$2,$3,$4)"
# One index probe per stream (max() with the stream id fixed walks the unique index backwards);
# a GROUP BY over the streams would scan every event of each stream.
_SQLITE_VERSION = "SELECT max(stream_version) FROM ledger_events WHERE stream_id = ?"
_PG_VERSIONS = (
    "SELECT s, (SELECT max(stream_version) FROM ledger_events WHERE stream_id = s) "
    "FROM unnest($1::text[]) AS s"
)
_PG_TAKEN = "SELECT event_id FROM ledger_events WHERE event_id = ANY($1::bytea[])"


def _streams_and_ids(requests: Sequence[Request]) -> tuple[list[str], list[bytes]]:
    streams = list({p.stream_id for r in requests for p in r.events})
    given = [p.event_id for r in requests for p in r.events if p.id_given]
    return streams, given


class SqliteWriter:
    """Runs each batch's transaction on one dedicated thread with its own sqlite3 connection."""

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
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            conn.execute(SQLITE_SECURE_DELETE)
            self._conn = conn
        return self._conn

    def _write(self, requests: Sequence[Request]) -> None:
        with translate_errors():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
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
                if rows:
                    conn.executemany(_SQLITE_INSERT, rows)
                if blobs:
                    conn.executemany(_SQLITE_BLOB, blobs)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

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
    """Runs each batch's transaction on a pooled asyncpg connection."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def __call__(self, requests: Sequence[Request]) -> None:
        store = self._store
        with translate_errors():
            async with store.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                pg: Any = raw.driver_connection
                async with pg.transaction():
                    await pg.execute("SELECT pg_advisory_xact_lock($1)", store.write_lock_key)
                    head = await pg.fetchrow(_HEAD)
                    streams, given = _streams_and_ids(requests)
                    versions = {
                        r[0]: r[1]
                        for r in await pg.fetch(_PG_VERSIONS, streams)
                        if r[1] is not None
                    }
                    taken: set[bytes] = set()
                    if given:
                        taken.update(r[0] for r in await pg.fetch(_PG_TAKEN, given))
                    rows, blobs = assign(
                        requests,
                        None if head is None else (head[0], head[1]),
                        versions,
                        taken,
                        time.time_ns() // 1000,
                    )
                    if rows:
                        await pg.executemany(_PG_INSERT, rows)
                    if blobs:
                        await pg.executemany(_PG_BLOB, blobs)

    async def close(self) -> None:
        """Nothing to release: connections belong to the store's pool."""


def make_writer(store: Store) -> SqliteWriter | PgWriter:
    """The batch writer for the store's backend."""
    if store.is_sqlite:
        return SqliteWriter(store.url.database or "")
    return PgWriter(store)
