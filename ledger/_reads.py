"""The read side of the ledger (floor 2): events by position, id or stream, filtered selections,
scans in rows or in Arrow columns, counts, and attachment bytes checked against their digests.
Every method is one read transaction of the store."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Collection
from typing import Any, Unpack, cast

import pyarrow as pa
from sqlalchemy import Select, and_, func, select

from ledger._batches import page_query, read_ahead
from ledger._errors import EventNotFoundError, LedgerError, check_positive
from ledger._format import Envelope
from ledger._query import (
    RECORD_COLUMNS,
    ROW_COLUMNS,
    EventFilter,
    EventRecord,
    conditions,
    envelope,
    event_ref,
)
from ledger._store import Store
from ledger._tables import attachments, events

__all__ = ["EventReads"]


class EventReads:
    """Reading the recorded events of the ledger in `_store` (the read side of `Ledger`)."""

    _store: Store

    async def _rows(self, query: Select[Any]) -> list[Envelope]:
        async with self._store.read() as conn:
            return [envelope(row) for row in (await conn.execute(query)).all()]

    async def read(self, from_position: int = 0, limit: int = 1000) -> list[Envelope]:
        """Events in position order, starting at `from_position`."""
        # Positions are gapless, so the upper bound selects the same rows as the LIMIT; it keeps
        # PostgreSQL on the primary key when the table has no statistics yet (a bare lower bound
        # is then planned as a scan and sort of the rest of the table).
        query = select(*ROW_COLUMNS).where(
            events.c.position >= from_position, events.c.position < from_position + limit
        )
        return await self._rows(query.order_by(events.c.position).limit(limit))

    async def get(self, ref: uuid.UUID | str | int) -> Envelope:
        """One event by id (UUID) or position; `EventNotFoundError` when there is none."""
        found = await self._rows(select(*ROW_COLUMNS).where(event_ref(ref)))
        if not found:
            raise EventNotFoundError(f"no event {ref}")
        return found[0]

    async def envelopes(self, positions: Collection[int]) -> list[Envelope]:
        """The whole events at `positions` (at most a few thousand at a time), in position
        order; a position with no event is left out."""
        query = select(*ROW_COLUMNS).where(events.c.position.in_(sorted(set(positions))))
        return await self._rows(query.order_by(events.c.position))

    async def stream(
        self, stream_id: str, from_version: int = 1, limit: int = 1000
    ) -> list[Envelope]:
        """The events of one stream in version order."""
        query = select(*ROW_COLUMNS).where(
            and_(events.c.stream_id == stream_id, events.c.stream_version >= from_version)
        )
        return await self._rows(query.order_by(events.c.stream_version).limit(limit))

    async def select(
        self, start: int = 0, limit: int = 1000, **filters: Unpack[EventFilter]
    ) -> list[EventRecord]:
        """At most `limit` events from position `start` on, in position order, that match every
        filter given (`ledger._query.EventFilter`).

        The public way to read events in bulk (exports, replay); `scan` streams them."""
        where = conditions(start, **filters)
        query = select(*RECORD_COLUMNS).where(*where).order_by(events.c.position).limit(limit)
        async with self._store.read() as conn:
            return cast(list[EventRecord], (await conn.execute(query)).all())

    async def scan(
        self, start: int = 0, *, batch: int = 5000, **filters: Unpack[EventFilter]
    ) -> AsyncIterator[list[EventRecord]]:
        """Every event `select` would return without a limit, `batch` at a time, in position
        order, in bounded memory. The next batch is read while the caller works on this one
        (the database works in its own thread or server), so reading and processing overlap."""
        check_positive("batch", batch)
        read = functools.partial(self.select, **filters)
        pages = read_ahead(read, start, batch, len, lambda rows: rows[-1].position)
        async with contextlib.aclosing(pages):  # an abandoned scan stops its read-ahead now
            async for rows in pages:
                yield rows

    async def scan_batches(
        self, start: int = 0, *, batch: int = 20_000, **filters: Unpack[EventFilter]
    ) -> AsyncGenerator[pa.RecordBatch, None]:
        """The events `scan` yields, as `pyarrow.RecordBatch`es of at most `batch` rows with the
        columns of `EVENT_BATCH_SCHEMA` (position, event_id as 16 bytes, type, stream_id,
        recorded_at_us, payload as canonical JSON bytes): for readers of many events that work
        in columns (exports, replay), in bounded memory.

        Each batch is read by the database's driver in one statement and never goes through
        Python objects per event on the caller's side; the next batch is read while the caller
        works on this one. Every batch has at least one row. Raises `InvalidEventError` for a
        `batch` that is not a positive int."""
        check_positive("batch", batch)
        read = functools.partial(
            self._store.read_columns, page_query(self._store.engine.dialect, **filters)
        )
        pages = read_ahead(
            read, start, batch, lambda page: page.num_rows, lambda page: page.column(0)[-1].as_py()
        )
        async with contextlib.aclosing(pages):  # an abandoned scan stops its read-ahead now
            async for page in pages:
                yield page

    async def count(self, start: int = 0, **filters: Unpack[EventFilter]) -> int:
        """How many events are recorded (that match the filters of `select`)."""
        query = select(func.count()).select_from(events).where(*conditions(start, **filters))
        async with self._store.read() as conn:
            return int(await conn.scalar(query) or 0)

    async def last_position(self) -> int:
        """The position of the last recorded event (-1 while the ledger is empty)."""
        async with self._store.read() as conn:
            value = await conn.scalar(select(func.max(events.c.position)))
        return -1 if value is None else int(value)

    async def _attachment_of(self, ref: uuid.UUID | str | int, name: str) -> Envelope:
        """The event `ref`, which must have an attachment `name`."""
        found = await self.get(ref)
        if name not in found.attachment_digests:
            raise EventNotFoundError(f"event {found.event_id} has no attachment {name!r}")
        return found

    async def attachment(self, ref: uuid.UUID | str | int, name: str) -> bytes | None:
        """An attachment's bytes (checked against the digest in the envelope), None if erased."""
        found = await self._attachment_of(ref, name)
        async with self._store.read() as conn:
            content = await conn.scalar(
                select(attachments.c.content).where(
                    and_(attachments.c.position == found.position, attachments.c.name == name)
                )
            )
        if content is None:
            return None
        if hashlib.sha256(content).digest() != found.attachment_digests[name]:
            raise LedgerError(
                f"attachment {name!r} of event {found.event_id} does not match its digest"
            )
        return bytes(content)
