"""The database seam (floor 2): engines for SQLite and PostgreSQL with the durability settings,
the ledger-wide write lock, and THE one place where driver errors become `LedgerError`s."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ledger._errors import (
    ImmutableViolationError,
    LedgerError,
    StoreIntegrityError,
    StoreUnavailableError,
)

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_SECURE_DELETE",
    "Store",
    "enable_wal",
    "is_busy",
    "translate_errors",
]

T = TypeVar("T")

_IMMUTABLE_MARK = "append-only"
_PG_IMMUTABLE_SQLSTATE = "UH001"
SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_SECURE_DELETE = "PRAGMA secure_delete=ON"
"""Every ledger SQLite connection zeroes what it frees: erased attachment bytes must not linger
in free space of the file (GDPR erasure)."""


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


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0]


def _translate(exc: BaseException) -> LedgerError:
    message = _describe(exc)
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(
        exc, "sqlstate", None
    )
    if _IMMUTABLE_MARK in message or sqlstate == _PG_IMMUTABLE_SQLSTATE:
        return ImmutableViolationError(message)
    if sqlstate == "42501" or "permission denied" in message:
        return ImmutableViolationError(message)
    integrity = isinstance(exc, sqlite3.IntegrityError) or (
        isinstance(exc, DBAPIError) and exc.__class__.__name__ == "IntegrityError"
    )
    if integrity:
        return StoreIntegrityError(f"the database refused a write: {message}")
    return StoreUnavailableError(f"database error: {message}")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn any driver or SQLAlchemy error raised inside into the matching `LedgerError`."""
    try:
        yield
    except LedgerError:
        raise
    except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
        raise _translate(exc) from exc
    except Exception as exc:
        # asyncpg's errors do not share a base with the others; recognise them by module.
        if type(exc).__module__.startswith("asyncpg"):
            raise _translate(exc) from exc
        raise


def _lock_key(ledger_id: str, purpose: str) -> int:
    digest = hashlib.sha256(f"unhardcoded-ledger/{ledger_id}/{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Store:
    """An async engine on one ledger database, with the ledger's transaction discipline.

    SQLite: WAL, `synchronous=FULL`, write transactions opened with `BEGIN IMMEDIATE` (the
    database's single writer lock is the ledger-wide write lock). PostgreSQL:
    `synchronous_commit=on` and `pg_advisory_xact_lock` keyed by the ledger id.
    """

    def __init__(self, url: str | URL, *, search_path: str | None = None) -> None:
        with translate_errors():
            try:
                self.url = make_url(url)
            except ArgumentError as exc:
                raise StoreUnavailableError(f"not a database URL: {url!r}") from exc
            backend = self.url.get_backend_name()
            if backend not in ("sqlite", "postgresql"):
                raise StoreUnavailableError(
                    f"unsupported database {backend!r}: use sqlite+aiosqlite:// or "
                    "postgresql+asyncpg://"
                )
            self.is_sqlite = backend == "sqlite"
            if self.is_sqlite and self.url.database in (None, "", ":memory:"):
                raise StoreUnavailableError(
                    "the ledger needs a SQLite file (sqlite+aiosqlite:///path.db), not memory"
                )
            kwargs: dict[str, Any] = {}
            if self.is_sqlite:
                kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            else:
                settings = {"synchronous_commit": "on"}
                if search_path:
                    settings["search_path"] = search_path
                kwargs["connect_args"] = {"server_settings": settings}
            self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            self._install_sqlite_discipline()
        self._ledger_id: str | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._reader_conn: sqlite3.Connection | None = None

    def _install_sqlite_discipline(self) -> None:
        sync_engine = self.engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control from the driver so BEGIN IMMEDIATE can be issued.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            enable_wal(cursor.execute)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute(SQLITE_SECURE_DELETE)
            cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            write = connection.get_execution_options().get("ledger_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    def bind_ledger(self, ledger_id: str) -> None:
        """Key the PostgreSQL advisory locks by this ledger's id (so ledgers never contend)."""
        self._ledger_id = ledger_id

    @property
    def write_lock_key(self) -> int:
        """The advisory lock key serialising appends to this ledger (PostgreSQL)."""
        return _lock_key(self._ledger_id or "", "append")

    @property
    def sequencer_lock_key(self) -> int:
        """The advisory lock key that elects the one sequencer of this ledger (PostgreSQL)."""
        return _lock_key(self._ledger_id or "", "sequence")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read transaction (a consistent snapshot on both backends)."""
        with translate_errors():
            async with self.engine.connect() as conn:
                if not self.is_sqlite:
                    await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
                yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction holding the ledger-wide write lock; commits on normal exit."""
        with translate_errors():
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(ledger_write=True)
                async with conn.begin():
                    if not self.is_sqlite:
                        await conn.execute(
                            text("SELECT pg_advisory_xact_lock(:k)"), {"k": self.write_lock_key}
                        )
                    yield conn

    @asynccontextmanager
    async def locked(self, purpose: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction serialised against every other holder of `purpose` (not against
        appends on PostgreSQL: the lock is `purpose`'s own advisory lock). For services that
        maintain projection tables beside the ledger; commits on normal exit."""
        with translate_errors():
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(ledger_write=True)
                async with conn.begin():
                    if not self.is_sqlite:
                        await conn.execute(
                            text("SELECT pg_advisory_xact_lock(:k)"),
                            {"k": _lock_key(self._ledger_id or "", purpose)},
                        )
                    yield conn

    @asynccontextmanager
    async def sequencer(self) -> AsyncIterator[AsyncConnection | None]:
        """The sequencer's transaction, or None when another process is sequencing right now.

        SQLite: a write transaction (the single writer). PostgreSQL: `pg_try_advisory_xact_lock`,
        so appends go on while the tree is extended.
        """
        with translate_errors():
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(ledger_write=True)
                async with conn.begin():
                    if not self.is_sqlite:
                        got = await conn.scalar(
                            text("SELECT pg_try_advisory_xact_lock(:k)"),
                            {"k": self.sequencer_lock_key},
                        )
                        if not got:
                            yield None
                            return
                    yield conn

    async def purge_erased(self, table: str) -> None:
        """Make bytes erased from `table` physically unrecoverable where the backend allows it.

        SQLite: the erasing connection ran with `secure_delete` (freed cells and pages are
        zeroed); a TRUNCATE checkpoint then copies the zeroed pages into the database file and
        empties the WAL, which still held the old page images. PostgreSQL: a plain VACUUM of the
        table (outside any transaction) prunes the dead row versions; see docs/ledger.md for
        what it does not reach (WAL segments, backups).
        """
        with translate_errors():
            async with self.engine.connect() as conn:
                if self.is_sqlite:
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
                    return
                raw = await conn.get_raw_connection()
                pg: Any = raw.driver_connection
                await pg.execute(f'VACUUM "{table}"')

    def _on_reader(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with translate_errors():
            if self._reader_conn is None:
                conn = sqlite3.connect(
                    self.url.database or "",
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=SQLITE_BUSY_TIMEOUT_MS / 1000,
                )
                conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                conn.execute(SQLITE_SECURE_DELETE)
                self._reader_conn = conn
            conn = self._reader_conn
            conn.execute("BEGIN")
            try:
                return fn(conn, *args)
            finally:
                conn.execute("COMMIT")

    async def sqlite_read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(sqlite3_connection, *args)` in one read transaction on the store's reader
        thread: one thread hop for a whole multi-query read (proofs), not one per statement."""
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="ledger-sqlite-reader")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self._on_reader, fn, args)

    def _close_reader(self) -> None:
        if self._reader_conn is not None:
            self._reader_conn.close()
            self._reader_conn = None

    async def dispose(self) -> None:
        """Close every pooled connection."""
        with translate_errors():
            if self._reader is not None:
                await asyncio.get_running_loop().run_in_executor(self._reader, self._close_reader)
                self._reader.shutdown(wait=True)
                self._reader = None
            await self.engine.dispose()
