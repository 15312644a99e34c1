"""The SQLite backend (floor 2): one file, WAL with `synchronous=FULL`, the database's single
writer lock as the ledger-wide write lock (`BEGIN IMMEDIATE`, busy timeout 60 s).

Appends are the hot path, so the batch writer talks to the stdlib `sqlite3` driver (the one
aiosqlite wraps) on a dedicated writer thread, the whole transaction in ONE hop to that thread:
through aiosqlite every statement is a hop, and each hop waits for the GIL while producers are
busy, which cost more than the fsync. Proof reads run on a reader thread the same way.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from ledger._batches import PageQuery
from ledger._committer import Request, assign
from ledger._errors import StoreUnavailableError
from ledger._proofread import EVENT_AND_HEAD, plan_of, proof_read
from ledger._sqlite_columns import ColumnReader
from ledger._store import ProofRead, Store, translate_errors
from ledger._tables import events
from ledger._treestore import Integrated, nodes_query
from ledger._verify import Source

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "SqliteStore", "SqliteWriter", "enable_wal", "is_busy"]

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 60_000
_SECURE_DELETE = "PRAGMA secure_delete=ON"
"""Every ledger SQLite connection zeroes what it frees: erased attachment bytes must not linger
in free space of the file (GDPR erasure)."""

_COLUMNS = ", ".join(events.columns.keys())
_HEAD = (
    "SELECT position, chain_hash, recorded_at_us FROM ledger_events ORDER BY position DESC LIMIT 1"
)
_ROWS = 32
"""Rows per INSERT statement: one multi-row statement costs ~20% less per row than executemany."""
_INSERTS = [
    f"INSERT INTO ledger_events ({_COLUMNS}) VALUES " + ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?)"] * n)
    for n in range(_ROWS + 1)
]
_BLOB = "INSERT INTO ledger_attachments (position, name, digest, content) VALUES (?,?,?,?)"
_TREE_HEAD = "SELECT tree_size FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1"
_NODE = "INSERT INTO ledger_merkle_nodes (level, idx, hash) VALUES (?,?,?)"
_CHECKPOINT = (
    "INSERT INTO ledger_checkpoints (tree_size, root_hash, signed_at_us, verifier_key, note) "
    "VALUES (?,?,?,?,?)"
)
# One index probe per stream (max() with the stream id fixed walks the unique index backwards;
# a GROUP BY over the streams would scan every event of each stream), all of a batch's streams
# in one statement, one column each: every statement is one more wait for the GIL on the writer
# thread, and each wait is a hand-off with the event loop.
_STREAMS = 64
"""Streams per version statement (SQLite allows 2000 result columns)."""
_VERSIONS = [
    "SELECT "
    + ",".join(["(SELECT max(stream_version) FROM ledger_events WHERE stream_id = ?)"] * n)
    for n in range(_STREAMS + 1)
]


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (SQLITE_BUSY, any of
    its extended codes)."""
    return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


def enable_wal(execute: Callable[[str], object]) -> None:
    """`PRAGMA journal_mode=WAL` through `execute`, retried while SQLite answers "database is
    locked" at once.

    Switching a file's journal mode takes its exclusive lock. When several connections open a
    fresh file together, SQLite may refuse straight away instead of calling the busy handler
    (it does so where waiting could deadlock: seen once in CI, three services opening one new
    file). The pragma is retried with a growing pause, for at most the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.001
    while True:
        try:
            execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _configure(execute: Callable[[str], object]) -> None:
    """The ledger's settings on a new connection (the engine's, the writer's, the reader's)."""
    enable_wal(execute)
    execute("PRAGMA synchronous=FULL")
    execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    execute(_SECURE_DELETE)


def _connect(path: str) -> sqlite3.Connection:
    """A stdlib connection with the ledger's settings (the writer's and the reader's)."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
    )
    try:
        _configure(conn.execute)
    except BaseException:
        conn.close()
        raise
    return conn


class _Thread:
    """A stdlib connection with the ledger's settings on a thread of its own: `run(fn, *args)`
    calls `fn(conn, *args)` there in one transaction (`begin`), committed when it returns and
    rolled back on any error: one hop to the thread for a whole transaction."""

    def __init__(self, path: str, name: str, begin: str) -> None:
        self._path, self._begin = path, begin
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"ledger-sqlite-{name}")
        self._conn: sqlite3.Connection | None = None

    def _transaction(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with translate_errors():
            if self._conn is None:
                self._conn = _connect(self._path)
            conn = self._conn
            conn.execute(self._begin)
            try:
                result = fn(conn, *args)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`fn(conn, *args)` in one transaction on the thread."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self._transaction, fn, args)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Close the connection (on its thread) and stop the thread."""
        if self._conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)


def _write(conn: sqlite3.Connection, requests: Sequence[Request]) -> None:
    head = conn.execute(_HEAD).fetchone()
    versions: dict[str, int] = {}
    streams = list({p.stream_id: None for r in requests for p in r.events})
    for start in range(0, len(streams), _STREAMS):
        part = streams[start : start + _STREAMS]
        lasts = conn.execute(_VERSIONS[len(part)], part).fetchone()
        versions.update((s, last) for s, last in zip(part, lasts, strict=True) if last is not None)
    given = [p.event_id for r in requests for p in r.events if p.id_given]
    taken: set[bytes] = set()
    if given:
        marks = ",".join("?" * len(given))
        found = conn.execute(
            f"SELECT event_id FROM ledger_events WHERE event_id IN ({marks})", given
        )
        taken.update(row[0] for row in found)
    rows, blobs = assign(requests, head, versions, taken, time.time_ns() // 1000)
    for start in range(0, len(rows), _ROWS):
        chunk = rows[start : start + _ROWS]
        conn.execute(_INSERTS[len(chunk)], [v for row in chunk for v in row])
    if blobs:
        conn.executemany(_BLOB, blobs)


def _write_tree(conn: sqlite3.Connection, done: Integrated) -> bool:
    row = conn.execute(_TREE_HEAD).fetchone()
    if (None if row is None else row[0]) != done.base_size:
        return False  # the tree moved on: nothing written (the commit ends a read)
    conn.executemany(_NODE, done.nodes)
    signed = done.checkpoint
    conn.execute(
        _CHECKPOINT,
        (signed.tree_size, signed.root_hash, signed.signed_at_us, signed.verifier_key, signed.note),
    )
    return True


class SqliteWriter(_Thread):
    """Runs each batch's transaction (BEGIN IMMEDIATE: the write lock) on one dedicated thread
    with its own sqlite3 connection: the event loop never waits for the lock or the fsync.

    The sequencer's tree writes run on that thread too, between two append batches: an append
    then waits for the rest of one short tree write, where a second connection would wait for
    SQLite's busy handler, which polls the lock with growing sleeps (1, 2, 5, 10, 15… ms) and so
    turns a lock held for a few ms into a wait of two or three times as long."""

    def __init__(self, path: str) -> None:
        super().__init__(path, "writer", "BEGIN IMMEDIATE")

    def write_tree(self, done: Integrated) -> asyncio.Future[bool]:
        """Insert a sequenced batch (its nodes and checkpoint) in one transaction on the writer
        thread; False when the tree moved on since the batch was read."""
        return self.run(_write_tree, done)

    def __call__(self, requests: Sequence[Request]) -> asyncio.Future[None]:
        # A plain function, not a coroutine: the batch reaches the writer thread right now, not
        # at the event loop's next turn (after every producer that is ready to run).
        return self.run(_write, requests)


def _read_inclusion(conn: sqlite3.Connection, column: str, value: object) -> ProofRead | None:
    row = conn.execute(EVENT_AND_HEAD.format(column=column), (value,)).fetchone()
    if row is None:
        return None
    found, plan = plan_of(row)
    rows = conn.execute(*nodes_query(plan.nodes)).fetchall() if plan and plan.nodes else []
    return proof_read(found, plan, rows)


class SqliteStore(Store):
    """The ledger in one SQLite file (`sqlite+aiosqlite:///path.db`)."""

    def __init__(self, url: URL) -> None:
        if url.database in (None, "", ":memory:"):
            raise StoreUnavailableError(
                "the ledger needs a SQLite file (sqlite+aiosqlite:///path.db), not memory"
            )
        with translate_errors():
            engine = create_async_engine(
                url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            )
        super().__init__(url, engine)
        self.path = url.database or ""
        self._reader = _Thread(self.path, "reader", "BEGIN")  # proofs
        self._columns = ColumnReader(self.path, SQLITE_BUSY_TIMEOUT_MS)  # scan_batches pages
        sync_engine = engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control from the driver so BEGIN IMMEDIATE can be issued.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            _configure(cursor.execute)
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            write = connection.get_execution_options().get("ledger_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    async def exists(self) -> bool:
        return await asyncio.to_thread(Path(self.path).exists)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        with translate_errors():
            async with self.engine.connect() as conn:
                yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        # The database's single writer lock (BEGIN IMMEDIATE) is the ledger-wide write lock.
        with translate_errors():
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(ledger_write=True)
                async with conn.begin():
                    yield conn

    def locked(self, purpose: str) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.write()  # one writer at a time: the write lock serialises every purpose

    @asynccontextmanager
    async def sequencer(self) -> AsyncIterator[bool]:
        # No election: a process's tree writes check the tree's head under the write lock, so
        # of two processes sequencing one file at once, one writes each batch and the other
        # reads the tree again.
        yield True

    def writer(self) -> SqliteWriter:
        return SqliteWriter(self.path)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._reader.run(fn, *args)

    async def read_inclusion(self, column: str, value: object) -> ProofRead | None:
        return await self._read(_read_inclusion, column, value)

    async def read_columns(self, query: PageQuery, start: int, limit: int) -> pa.RecordBatch:
        # Read by ADBC on a thread of its own, while the caller works on the last page.
        return await self._columns.read(query, start, limit)

    async def verify_source(self, conn: AsyncConnection) -> Source:
        return Source(sqlite_path=self.path, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)

    async def purge_erased(self, table: str) -> None:
        """The erasing connection ran with `secure_delete` (freed cells and pages are zeroed); a
        TRUNCATE checkpoint then copies the zeroed pages into the database file and empties the
        WAL, which still held the old page images."""
        with translate_errors():
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                cursor = await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                try:
                    busy, _log, _done = await cursor.fetchone()
                finally:
                    await cursor.close()
                if busy:
                    raise StoreUnavailableError(
                        "the attachment is erased, but a long-running reader kept the WAL "
                        "from being emptied: retry the erasure once it has finished"
                    )

    async def dispose(self) -> None:
        await self._reader.close()
        await self._columns.close()
        await super().dispose()
