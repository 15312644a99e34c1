"""The completeness proof of a bundle, on the creating side (docs/bundles.md, "Completeness").

A tenant's decisions are the events of its sequence (stream `decisions/{tenant}`): numbered
gaplessly by the ledger (stream version) in the serialized step that stamps their recorded time,
so along the sequence time never decreases. A bundle for [since, until) therefore holds the
sequence's events from the last one recorded before `since` (the lower boundary) to the first
one recorded at or after `until` (the upper boundary). When the tenant has recorded nothing at or
after `until` yet (or the period is open), a `DecisionsSealed` event is appended to the sequence
first and is the upper boundary: it proves that no decision follows the bundle's last one up to
its own recorded time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ledger import Envelope, Ledger
from reports._errors import ReportsError
from router.services.decisions import seal_event, tenant_stream

__all__ = [
    "COMPLETENESS_FORMAT",
    "SEALED",
    "Sequence",
    "at_us",
    "iso_us",
    "plan_sequence",
    "sequence_column",
    "sequence_of",
]

COMPLETENESS_FORMAT = "unhardcoded-completeness/1"
"""The `format` of a manifest's `completeness` member."""

_SEALS = 5
"""Seals tried before giving up on a clock that does not move (see `_seal`)."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def _micros(at: datetime | None) -> int | None:
    return None if at is None else (at - _EPOCH) // _US


def at_us(micros: int) -> datetime:
    """The UTC instant of a ledger time (µs since the epoch), exactly."""
    return _EPOCH + micros * _US


def iso_us(micros: int | None) -> str | None:
    """The manifest's timestamp format of a ledger time (µs since the epoch, UTC)."""
    if micros is None:
        return None
    return at_us(micros).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Sequence:
    """What a bundle holds of the tenant's sequence beyond its data's decisions, and the instant
    its data stops at."""

    stream: str
    first_version: int
    last_version: int
    boundaries: list[Envelope]
    """The lower boundary (when the period starts after the sequence's first event), the seals
    recorded in the period, and the upper boundary: every sequence event of versions
    `first_version`..`last_version` that is not a decision of the data."""
    cut_us: int
    """The exclusive end of the exported data: `until`, or the seal's time when it is earlier."""
    unsequenced_before: int | None
    """The recorded time of the sequence's first event when the bundle starts with it: a
    decision recorded before it (by release 0.1.0, without sequences) is not covered."""

    def manifest(self) -> dict[str, Any]:
        """The manifest's `completeness` member: what `bundle verify` must find proven."""
        return {
            "format": COMPLETENESS_FORMAT,
            "stream": self.stream,
            "first_version": self.first_version,
            "last_version": self.last_version,
            "proven_until": iso_us(self.cut_us),
            "unsequenced_before": iso_us(self.unsequenced_before),
        }


SEALED = "DecisionsSealed"


def sequence_of(envelope: Envelope, tenant: str) -> int | None:
    """A decision's version in its tenant's sequence (the `sequence` column), None when it is
    in none (release 0.1.0 recorded decisions in their policy's stream)."""
    return envelope.stream_version if envelope.stream_id == tenant_stream(tenant) else None


def sequence_column(tenants: pa.ChunkedArray, streams: pa.Array, versions: pa.Array) -> pa.Array:
    """`sequence_of` for a chunk of decisions, column-wise: their tenants, streams and
    versions (a `Ledger.scan_batches` batch's `stream_id` and `stream_version`)."""
    expected = pc.binary_join_element_wise(tenant_stream(""), tenants.combine_chunks(), "")
    inside = pc.equal(streams, expected)
    return pc.if_else(inside, versions, pa.scalar(None, pa.int64()))


async def _seal(ledger: Ledger, tenant: str) -> Envelope:
    """Append a `DecisionsSealed` to the tenant's sequence, recorded strictly after the event
    before it: its time is then the exact end of what it proves (a decision of the same
    microsecond would be on both sides of it)."""
    stream = tenant_stream(tenant)
    for _ in range(_SEALS):
        (seal,) = await ledger.append(seal_event(tenant))
        if seal.stream_version == 1:
            return seal
        (before,) = await ledger.stream(stream, seal.stream_version - 1, 1)
        if before.recorded_at_us < seal.recorded_at_us:
            return seal
        await asyncio.sleep(0.002)
    raise ReportsError(
        f"the ledger's clock did not move past the last event of {stream} in {_SEALS} tries: "
        "run the command again"
    )


async def plan_sequence(
    ledger: Ledger, tenant: str, since: datetime | None, until: datetime | None
) -> Sequence:
    """The sequence events a bundle of `tenant` for [`since`, `until`) holds, sealing the
    sequence first when nothing recorded at/after `until` bounds it yet."""
    stream = tenant_stream(tenant)
    since_us, until_us = _micros(since), _micros(until)
    cut = until_us
    later = 0
    if until_us is not None:
        later = await ledger.count(stream_id=stream, recorded_since_us=until_us)
    if until_us is None or later == 0:
        seal = await _seal(ledger, tenant)
        if until_us is None or seal.recorded_at_us < until_us:
            cut = seal.recorded_at_us
    assert cut is not None
    # Time never decreases along the sequence: the events before `since` are versions 1..low,
    # the period's are low+1..high, and version high+1 (recorded at/after the cut) exists.
    low = (
        0 if since_us is None else await ledger.count(stream_id=stream, recorded_until_us=since_us)
    )
    high = await ledger.count(stream_id=stream, recorded_until_us=cut)
    wanted = {high + 1} | ({low} if low >= 1 else set())
    boundaries: list[Envelope] = []
    async for records in ledger.scan(
        types=(SEALED,), stream_id=stream, recorded_since_us=since_us, recorded_until_us=cut
    ):
        boundaries.extend([await ledger.get(r.position) for r in records])
    for version in sorted(wanted - {e.stream_version for e in boundaries}):
        boundaries.append(await _version(ledger, stream, version))
    boundaries.sort(key=lambda e: e.stream_version)
    unsequenced = None
    if low == 0:
        start = boundaries[0] if boundaries[0].stream_version == 1 else None
        unsequenced = (start or await _version(ledger, stream, 1)).recorded_at_us
    return Sequence(stream, max(low, 1), high + 1, boundaries, cut, unsequenced)


async def _version(ledger: Ledger, stream: str, version: int) -> Envelope:
    found = await ledger.stream(stream, version, 1)
    if not found or found[0].stream_version != version:
        raise ReportsError(
            f"the ledger's {stream} has no version {version}: run `unhardcoded ledger verify`"
        )
    return found[0]
