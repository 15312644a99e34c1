"""The database seam (floor 2): the protocol every backend implements, one module per database
(`ledger._sqlite`, `ledger._postgres`, as eventsourcing's recorders), and THE one place where
driver errors become `LedgerError`s."""

from __future__ import annotations

import hashlib
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger._errors import (
    ImmutableViolationError,
    LedgerError,
    StoreIntegrityError,
    StoreUnavailableError,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from ledger._batches import PageQuery
    from ledger._committer import Request
    from ledger._treestore import Integrated, SignedCheckpoint
    from ledger._verify import Source

__all__ = ["BatchWriter", "ProofRead", "Store", "translate_errors"]

ProofRead = tuple[int, bytes, bytes, "SignedCheckpoint | None", list[bytes] | None]
"""What `Store.read_inclusion` reads: (position, event id, leaf hash, latest checkpoint, proof
path), the last two None when the event is not covered by a checkpoint yet."""

_IMMUTABLE_MARK = "append-only"
_PG_IMMUTABLE_SQLSTATE = "UH001"


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


class BatchWriter(Protocol):
    """Writes one group-commit batch in one durable transaction under the write lock, and
    the sequencer's batches of tree nodes in short transactions of their own."""

    def __call__(self, requests: Sequence[Request]) -> Awaitable[None]: ...

    def write_tree(self, done: Integrated) -> Awaitable[bool]:
        """Insert a sequenced batch's nodes and checkpoint in one short transaction; False
        (nothing written) when another sequencer extended the tree since the batch was read."""
        ...

    async def close(self) -> None:
        """Release what the writer holds (threads, connections)."""


class Store(ABC):
    """An async engine on one ledger database, with the ledger's transaction discipline.

    One subclass per database; `ledger.open_store` picks it from the URL. Every method
    translates driver errors into `LedgerError`s.
    """

    def __init__(self, url: URL, engine: AsyncEngine) -> None:
        self.url = url
        self.engine = engine
        self._ledger_id = ""

    def bind_ledger(self, ledger_id: str) -> None:
        """Key the store's locks by this ledger's id (so ledgers never contend)."""
        self._ledger_id = ledger_id

    def lock_key(self, purpose: str) -> int:
        """A 64-bit key naming one lock of this ledger (PostgreSQL advisory locks)."""
        digest = hashlib.sha256(f"unhardcoded-ledger/{self._ledger_id}/{purpose}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    @abstractmethod
    async def exists(self) -> bool:
        """Whether the database is there at all (a SQLite file; a PostgreSQL server is)."""

    @abstractmethod
    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read transaction (a consistent snapshot)."""

    @abstractmethod
    def write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction holding the ledger-wide write lock; commits on normal exit."""

    @abstractmethod
    def locked(self, purpose: str) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction serialised against every other holder of `purpose` (not against
        appends on PostgreSQL), for migrations and for services that maintain projection tables
        beside the ledger; commits on normal exit."""

    @abstractmethod
    def sequencer(self) -> AbstractAsyncContextManager[bool]:
        """Held for one sequencing pass: False when another process is sequencing right now.
        Appends never wait for it (the pass writes through `BatchWriter.write_tree`)."""

    @abstractmethod
    def writer(self) -> BatchWriter:
        """The writer of group-commit batches (the append hot path)."""

    @abstractmethod
    async def read_inclusion(self, column: str, value: object) -> ProofRead | None:
        """The event where `column` (position or event_id) = `value`, the latest checkpoint and
        the inclusion path against it; None when there is no such event."""

    @abstractmethod
    async def read_columns(self, query: PageQuery, start: int, limit: int) -> pa.RecordBatch:
        """One page of a scan: at most `limit` events of `query` from position `start` on, in
        position order, read through the driver in one statement (`ledger._batches`)."""

    @abstractmethod
    async def verify_source(self, conn: AsyncConnection) -> Source:
        """Where verify ranges read the snapshot of `conn` (a read transaction)."""

    @abstractmethod
    async def purge_erased(self, table: str) -> None:
        """Make bytes erased from `table` physically unrecoverable where the backend allows it."""

    async def dispose(self) -> None:
        """Close every pooled connection."""
        with translate_errors():
            await self.engine.dispose()
