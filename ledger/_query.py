"""How the ledger reads its events table: the columns of an `Envelope` and of an `EventRecord`,
the WHERE clauses of a scan and of one event given by id or position."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple, TypedDict, Unpack

from sqlalchemy import BindParameter

from ledger._errors import InvalidEventError
from ledger._format import Envelope, decode_attachment_digests
from ledger._tables import events

__all__ = [
    "RECORD_COLUMNS",
    "ROW_COLUMNS",
    "EventFilter",
    "EventRecord",
    "conditions",
    "envelope",
    "event_ref",
    "ref_column",
]

ROW_COLUMNS = tuple(events.columns)
"""Every column of an event, in table order: an `Envelope` (`envelope`)."""


def envelope(row: Sequence[Any]) -> Envelope:
    return Envelope(
        position=row[0],
        event_id=uuid.UUID(bytes=bytes(row[1])),
        type=row[2],
        stream_id=row[3],
        stream_version=row[4],
        recorded_at_us=row[5],
        payload=bytes(row[6]),
        payload_digest=bytes(row[7]),
        attachment_digests=decode_attachment_digests(bytes(row[8])),
        prev_hash=bytes(row[9]),
        chain_hash=bytes(row[10]),
        leaf_hash=bytes(row[11]),
    )


class EventRecord(NamedTuple):
    """One event as `Ledger.select` and `Ledger.scan` return it: what readers of many events
    need, straight from the database (no hashes; `Ledger.get` has the whole `Envelope`)."""

    position: int
    event_id: bytes
    """The event id's 16 bytes (`uuid.UUID(bytes=…)`)."""
    type: str
    stream_id: str
    recorded_at_us: int
    payload: bytes
    """The payload's canonical JSON bytes."""
    stream_version: int
    """The event's version in its stream."""


RECORD_COLUMNS = (
    events.c.position,
    events.c.event_id,
    events.c.type,
    events.c.stream_id,
    events.c.recorded_at_us,
    events.c.payload,
    events.c.stream_version,
)


class EventFilter(TypedDict, total=False):
    """The filters of `Ledger.select`, `scan`, `scan_batches` and `count`: an event matches
    when it matches every filter given."""

    stop: int | None
    """Positions below this one."""
    types: Collection[str] | None
    """One of these event types."""
    stream_id: str | None
    """This stream."""
    event_ids: Collection[uuid.UUID] | None
    """One of these event ids."""
    recorded_since_us: int | None
    """Recorded at or after this time (µs since the epoch)."""
    recorded_until_us: int | None
    """Recorded before this time (µs since the epoch)."""


def conditions(start: int | BindParameter[int], **filters: Unpack[EventFilter]) -> list[Any]:
    """The WHERE clauses of the events from position `start` on that match `filters`."""
    where: list[Any] = [events.c.position >= start]
    if (stop := filters.get("stop")) is not None:
        where.append(events.c.position < stop)
    if (types := filters.get("types")) is not None:
        where.append(events.c.type.in_(list(types)))
    if (stream_id := filters.get("stream_id")) is not None:
        where.append(events.c.stream_id == stream_id)
    if (event_ids := filters.get("event_ids")) is not None:
        where.append(events.c.event_id.in_([e.bytes for e in event_ids]))
    if (since := filters.get("recorded_since_us")) is not None:
        where.append(events.c.recorded_at_us >= since)
    if (until := filters.get("recorded_until_us")) is not None:
        where.append(events.c.recorded_at_us < until)
    return where


def ref_column(ref: uuid.UUID | str | int) -> tuple[str, object]:
    """(column, value) of an event given by id (UUID or its text) or by position (int)."""
    if isinstance(ref, bool):
        raise InvalidEventError(f"not an event id or position: {ref!r}")
    if isinstance(ref, str):
        text = ref.strip()
        if text.isascii() and text.isdigit():
            ref = int(text)
    if isinstance(ref, int):
        # Positions are 64-bit signed integers in both databases.
        if not 0 <= ref < 1 << 63:
            raise InvalidEventError(f"not an event position (0 to 2^63 - 1): {ref}")
        return "position", ref
    if isinstance(ref, str):
        try:
            ref = uuid.UUID(ref.strip())
        except ValueError:
            raise InvalidEventError(f"not an event id (UUID) or position: {ref!r}") from None
    if not isinstance(ref, uuid.UUID):
        raise InvalidEventError(f"not an event id or position: {ref!r}")
    return "event_id", ref.bytes


def event_ref(ref: uuid.UUID | str | int) -> Any:
    """A WHERE clause for an event given by id or position."""
    column, value = ref_column(ref)
    return events.c[column] == value
