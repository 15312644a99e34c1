"""What a tenant's page of decisions carries to prove it is complete (docs/http.md,
"Completeness of a page"; the argument is docs/bundles.md's, "Completeness").

A tenant's decisions are the events of its gapless sequence `decisions/<tenant>`, in position
order. A page holds the tenant's decisions after its cursor (a ledger position), each with its
`sequence` number. `page_completeness` names the sequence's events around and between them: the
**lower** neighbour (the tenant's last sequence event at or before the cursor: on the next page,
the last decision of this one), the **seals** (the sequence's events between the neighbours that
are not decisions), and the **upper** neighbour (the event right after the page's last one: the
next page's first, or a seal). Every version strictly between the neighbours is then a decision
of the page or a listed seal, which a client checks against the leaves and inclusion proofs of
`sequence_events`, all against one signed checkpoint."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select

from ledger import Envelope, Ledger, NotSequencedError, SignedCheckpoint
from router.services.decisions._errors import DecisionError, RecordMismatchError
from router.services.decisions._events import tenant_stream
from router.services.decisions._projection import DecisionPage
from router.services.decisions._tables import decision_index

__all__ = [
    "MAX_SEQUENCE_EVENTS",
    "Neighbour",
    "PageCompleteness",
    "page_completeness",
    "sequence_events",
]

_MAX_POSITION = 2**63 - 1
"""The largest ledger position a cursor can name (a 64-bit signed integer in the database)."""

MAX_SEQUENCE_EVENTS = 1000
"""The most sequence events `DecisionService.sequence_events` returns at once."""


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A sequence event a page names: a boundary, or a seal between its decisions."""

    version: int
    position: int
    event_id: uuid.UUID
    type: str

    @classmethod
    def of(cls, envelope: Envelope) -> Neighbour:
        """The neighbour an event is."""
        return cls(envelope.stream_version, envelope.position, envelope.event_id, envelope.type)

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "version": self.version,
            "position": self.position,
            "event_id": str(self.event_id),
            "type": self.type,
        }


@dataclass(frozen=True, slots=True)
class PageCompleteness:
    """The sequence events around and between a tenant's page of decisions."""

    stream: str
    after_position: int
    """The page's cursor: it holds the tenant's decisions recorded after this position (-1:
    from the start)."""
    lower: Neighbour | None
    """None on the first page: its first sequence event is version 1."""
    upper: Neighbour | None
    """None when the tenant had recorded nothing after the page's last event when it was read."""
    seals: tuple[Neighbour, ...]
    unsequenced: int
    """Decisions of the page recorded by release 0.1.0 (no sequence number): not covered."""
    last_version: int
    """The page's last sequence event (the lower neighbour's when the page holds none)."""

    @property
    def first_version(self) -> int:
        """The first version the page's proof covers (the lower neighbour's, or 1)."""
        return 1 if self.lower is None else self.lower.version

    @property
    def to_version(self) -> int:
        """The last version the page's proof covers (the upper neighbour's, or the page's)."""
        return self.last_version if self.upper is None else self.upper.version

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "stream": self.stream,
            "after_position": self.after_position,
            "first_version": self.first_version,
            "last_version": self.to_version,
            "lower": None if self.lower is None else self.lower.to_json(),
            "upper": None if self.upper is None else self.upper.to_json(),
            "seals": [s.to_json() for s in self.seals],
            "unsequenced": self.unsequenced,
        }


async def _version(ledger: Ledger, stream: str, version: int) -> Envelope | None:
    found = await ledger.stream(stream, version, 1)
    return found[0] if found and found[0].stream_version == version else None


async def _lower(ledger: Ledger, tenant: str, after: int) -> int:
    """The version of the tenant's last sequence event at or before position `after` (0: none)."""
    if after < 0:
        return 0
    # The usual cursor is the previous page's last decision: the projection knows its number.
    async with ledger.store.read() as conn:
        known = await conn.scalar(
            select(decision_index.c.sequence).where(
                and_(decision_index.c.position == after, decision_index.c.tenant == tenant)
            )
        )
    if known is not None:
        return int(known)
    # Versions follow positions along a stream: the events at or before `after` are 1..count.
    # (A cursor at the largest position there can be is past every event: no stop.)
    stop = after + 1 if after < _MAX_POSITION else None
    return await ledger.count(stream_id=tenant_stream(tenant), stop=stop)


async def page_completeness(
    ledger: Ledger, tenant: str, page: DecisionPage, after: int
) -> PageCompleteness:
    """The neighbours and seals of `tenant`'s `page` of decisions, read after cursor `after`."""
    stream = tenant_stream(tenant)
    low = await _lower(ledger, tenant, after)
    numbers = {d.sequence for d in page.decisions if d.sequence is not None}
    high = max(numbers, default=low)
    lower = None if low == 0 else await _version(ledger, stream, low)
    if low and lower is None:
        raise RecordMismatchError(f"the ledger's {stream} has no version {low}")
    seals: list[Neighbour] = []
    for version in range(low + 1, high + 1):
        if version not in numbers:  # not a decision of the page: a seal, or the page is wrong
            found = await _version(ledger, stream, version)
            if found is None:
                raise RecordMismatchError(f"the ledger's {stream} has no version {version}")
            seals.append(Neighbour.of(found))
    upper = await _version(ledger, stream, high + 1)
    return PageCompleteness(
        stream=stream,
        after_position=after,
        lower=None if lower is None else Neighbour.of(lower),
        upper=None if upper is None else Neighbour.of(upper),
        seals=tuple(seals),
        unsequenced=sum(d.sequence is None for d in page.decisions),
        last_version=high,
    )


async def sequence_events(
    ledger: Ledger, tenant: str, first: int, last: int
) -> tuple[list[Envelope], SignedCheckpoint]:
    """Versions `first`..`last` of `tenant`'s sequence and one signed checkpoint covering them
    all (signed first when none does yet), for their inclusion proofs."""
    if first < 1 or last < first or last - first >= MAX_SEQUENCE_EVENTS:
        raise DecisionError(
            f"versions {first}..{last}: give 1 <= from_version <= to_version, at most "
            f"{MAX_SEQUENCE_EVENTS} versions at once"
        )
    events = await ledger.stream(tenant_stream(tenant), first, last - first + 1)
    if not events:
        return [], await _covering(ledger, -1)
    return events, await _covering(ledger, max(e.position for e in events))


async def _covering(ledger: Ledger, position: int) -> SignedCheckpoint:
    head = await ledger.latest_checkpoint()
    if head is None or head.tree_size <= position:
        head = await ledger.sequence() or await ledger.latest_checkpoint()
    if head is None or head.tree_size <= position:
        raise NotSequencedError(
            f"no signed checkpoint covers ledger position {position} yet: retry shortly"
        )
    return head
