"""Reading events in columns (`Ledger.scan_batches`): the Arrow schema of a batch, the one paged
statement a scan runs, compiled once for the store's database, and the conversion of a page of
driver rows into a `pyarrow.RecordBatch`.

The rows come straight from the driver (stdlib `sqlite3`, asyncpg): going through SQLAlchemy's
result rows and `EventRecord`s cost more per event than reading the page itself.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Unpack

import pyarrow as pa
from sqlalchemy import BigInteger, bindparam, select
from sqlalchemy.engine import Dialect

from ledger._query import RECORD_COLUMNS, EventFilter, conditions
from ledger._tables import events

__all__ = ["EVENT_BATCH_SCHEMA", "PageQuery", "page_query", "read_ahead", "to_batch"]

_Page = TypeVar("_Page")

EVENT_BATCH_SCHEMA = pa.schema(
    [
        pa.field("position", pa.int64(), nullable=False),
        pa.field("event_id", pa.binary(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("stream_id", pa.string(), nullable=False),
        pa.field("recorded_at_us", pa.int64(), nullable=False),
        pa.field("payload", pa.binary(), nullable=False),
        pa.field("stream_version", pa.int64(), nullable=False),
    ]
)
"""The columns of a `Ledger.scan_batches` batch: the fields of an `EventRecord` (event id: its 16
bytes; payload: its canonical JSON bytes)."""

_START = "scan_start"
_LIMIT = "scan_limit"


@dataclass(frozen=True, slots=True)
class PageQuery:
    """The statement that reads one page of a scan, in the driver's own SQL and positional
    parameters: `params(start, limit)` are those of the page from position `start` on."""

    sql: str
    names: tuple[str, ...]
    values: dict[str, Any]

    def params(self, start: int, limit: int) -> list[Any]:
        """The statement's parameters, in order, for the page of `limit` events from `start`."""
        given = {**self.values, _START: start, _LIMIT: limit}
        return [given[name] for name in self.names]


def page_query(dialect: Dialect, **filters: Unpack[EventFilter]) -> PageQuery:
    """The page statement of a scan with these filters (those of `Ledger.select`), compiled
    once for `dialect`: the pages differ only in their start position."""
    where = conditions(bindparam(_START, 0, BigInteger), **filters)
    query = (
        select(*RECORD_COLUMNS)
        .where(*where)
        .order_by(events.c.position)
        .limit(bindparam(_LIMIT, 1, BigInteger))
    )
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    names = tuple(compiled.positiontup or ())
    return PageQuery(compiled.string, names, dict(compiled.params))


def to_batch(rows: Sequence[Sequence[Any]]) -> pa.RecordBatch:
    """A page of driver rows (the columns of `EVENT_BATCH_SCHEMA`, in order) as one batch."""
    if not rows:
        return pa.RecordBatch.from_pylist([], schema=EVENT_BATCH_SCHEMA)
    columns = list(zip(*rows, strict=True))
    return pa.RecordBatch.from_arrays(
        [
            pa.array(column, field.type)
            for column, field in zip(columns, EVENT_BATCH_SCHEMA, strict=True)
        ],
        schema=EVENT_BATCH_SCHEMA,
    )


async def read_ahead(
    read: Callable[[int, int], Awaitable[_Page]],
    start: int,
    batch: int,
    rows: Callable[[_Page], int],
    last_position: Callable[[_Page], int],
) -> AsyncGenerator[_Page, None]:
    """The pages `read(start, batch)` returns from `start` on, until a page holds fewer than
    `batch` rows, each non-empty one yielded; the next page is read while the caller works on
    this one (the database works in its own thread or server), so reading and processing
    overlap. The one paging loop of `Ledger.scan` and `Ledger.scan_batches`."""
    pending = asyncio.ensure_future(read(start, batch))
    try:
        while True:
            page = await pending
            size = rows(page)
            if size == batch:
                pending = asyncio.ensure_future(read(last_position(page) + 1, batch))
            if size:
                yield page
            if size < batch:
                return
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
