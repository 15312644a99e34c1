"""The decision record's projection: queryable columns (tenant, fingerprint, time) by the ledger.

The ledger knows nothing of routing, so the columns the read models filter on live in tables this
service owns (migration `0002_decisions`): not hashed, not immutable, rebuildable from the ledger at
any time. `catch_up` reads the events after the last projected position and projects them, under a
lock of its own, so any process (a fresh CLI too) sees every decision before it queries.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select, update

from ledger import Envelope, Ledger
from router.services.decisions._events import CATALOG_PUBLISHED, DECISION_MADE, tenant_stream
from router.services.decisions._tables import catalog_index, decision_index, projection_state

__all__ = [
    "CatalogVersionInfo",
    "DecisionPage",
    "DecisionSummary",
    "catalog_index",
    "catch_up",
    "decision_index",
    "projection_state",
    "rebuild_projection",
]

_STATE = "decisions"
_LOCK = "decisions-projection"
_CHUNK = 2000


def _at(recorded_at_us: int) -> datetime:
    return datetime.fromtimestamp(recorded_at_us / 1_000_000, tz=UTC)


@dataclass(frozen=True, slots=True)
class DecisionSummary:
    """One row of a decision listing; `position` is the ledger position (the page cursor)."""

    decision_id: uuid.UUID
    tenant: str
    fingerprint: str
    recorded_at: datetime
    preview: bool
    selected: str | None
    position: int
    sequence: int | None
    """Its version in the tenant's sequence `decisions/<tenant>` (None: release 0.1.0)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-able (timestamps ISO 8601 UTC)."""
        return {
            "decision_id": str(self.decision_id),
            "tenant": self.tenant,
            "fingerprint": self.fingerprint,
            "recorded_at": self.recorded_at.isoformat().replace("+00:00", "Z"),
            "preview": self.preview,
            "selected": self.selected,
            "position": self.position,
            "sequence": self.sequence,
        }


@dataclass(frozen=True, slots=True)
class DecisionPage:
    """A page of decisions in position order; `next_cursor` is None on the last page."""

    decisions: tuple[DecisionSummary, ...]
    next_cursor: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "decisions": [d.to_json() for d in self.decisions],
            "next_cursor": self.next_cursor,
        }


@dataclass(frozen=True, slots=True)
class CatalogVersionInfo:
    """A published catalog version."""

    version: str
    name: str
    entries: int
    published_at: datetime
    position: int

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "version": self.version,
            "name": self.name,
            "entries": self.entries,
            "published_at": self.published_at.isoformat().replace("+00:00", "Z"),
            "position": self.position,
        }


def _rows(batch: list[Envelope]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    decisions: list[dict[str, Any]] = []
    catalogs: list[dict[str, Any]] = []
    for envelope in batch:
        if envelope.type == DECISION_MADE:
            payload = json.loads(envelope.payload)
            selected = payload.get("selected")
            decisions.append(
                {
                    "position": envelope.position,
                    "decision_id": envelope.event_id.bytes,
                    "tenant": payload["tenant"],
                    "fingerprint": payload["policy"]["fingerprint"],
                    "recorded_at_us": envelope.recorded_at_us,
                    "preview": bool(payload["preview"]),
                    "selected": None if selected is None else selected["id"],
                    "sequence": (
                        envelope.stream_version
                        if envelope.stream_id == tenant_stream(payload["tenant"])
                        else None
                    ),
                }
            )
        elif envelope.type == CATALOG_PUBLISHED:
            payload = json.loads(envelope.payload)
            catalogs.append(
                {
                    "version": payload["version"],
                    "position": envelope.position,
                    "name": payload["name"],
                    "entries": payload["entries"],
                    "recorded_at_us": envelope.recorded_at_us,
                }
            )
    return decisions, catalogs


async def _projected(ledger: Ledger) -> int:
    async with ledger.store.read() as conn:
        value = await conn.scalar(
            select(projection_state.c.position).where(projection_state.c.name == _STATE)
        )
    return -1 if value is None else int(value)


async def catch_up(ledger: Ledger) -> int:
    """Project every event recorded after the last projected position; returns that position.

    Safe from many processes at once: each chunk is written under the projection's own lock
    after re-reading the projected position, so an event is never projected twice."""
    last = await _projected(ledger)
    while True:
        batch = await ledger.read(last + 1, limit=_CHUNK)
        if not batch:
            return last
        async with ledger.store.locked(_LOCK) as conn:
            current = await conn.scalar(
                select(projection_state.c.position).where(projection_state.c.name == _STATE)
            )
            done = -1 if current is None else int(current)
            fresh = [e for e in batch if e.position > done]
            decisions, catalogs = _rows(fresh)
            if decisions:
                await conn.execute(insert(decision_index), decisions)
            if catalogs:
                await conn.execute(insert(catalog_index), catalogs)
            end = max(done, batch[-1].position)
            if current is None:
                await conn.execute(insert(projection_state), {"name": _STATE, "position": end})
            elif end != done:
                await conn.execute(
                    update(projection_state)
                    .where(projection_state.c.name == _STATE)
                    .values(position=end)
                )
        last = end
        if len(batch) < _CHUNK:
            return last


async def rebuild_projection(ledger: Ledger) -> int:
    """Empty the projection and project the whole ledger again (it is derived data only)."""
    async with ledger.store.locked(_LOCK) as conn:
        for table in (decision_index, catalog_index, projection_state):
            await conn.execute(delete(table))
    return await catch_up(ledger)


async def query_decisions(
    ledger: Ledger,
    *,
    tenant: str | None,
    fingerprint: str | None,
    since: datetime | None,
    until: datetime | None,
    after: int,
    limit: int,
) -> DecisionPage:
    """A page of the projected decisions (call `catch_up` first)."""
    conditions = [decision_index.c.position > after]
    if tenant is not None:
        conditions.append(decision_index.c.tenant == tenant)
    if fingerprint is not None:
        conditions.append(decision_index.c.fingerprint == fingerprint)
    if since is not None:
        conditions.append(decision_index.c.recorded_at_us >= int(since.timestamp() * 1_000_000))
    if until is not None:
        conditions.append(decision_index.c.recorded_at_us < int(until.timestamp() * 1_000_000))
    query = (
        select(
            decision_index.c.decision_id,
            decision_index.c.tenant,
            decision_index.c.fingerprint,
            decision_index.c.recorded_at_us,
            decision_index.c.preview,
            decision_index.c.selected,
            decision_index.c.position,
            decision_index.c.sequence,
        )
        .where(and_(*conditions))
        .order_by(decision_index.c.position)
        .limit(limit + 1)
    )
    async with ledger.store.read() as conn:
        rows = (await conn.execute(query)).all()
    found = tuple(
        DecisionSummary(
            uuid.UUID(bytes=bytes(r[0])),
            r[1],
            r[2],
            _at(r[3]),
            bool(r[4]),
            r[5],
            int(r[6]),
            None if r[7] is None else int(r[7]),
        )
        for r in rows[:limit]
    )
    more = len(rows) > limit
    return DecisionPage(found, str(found[-1].position) if more else None)


async def query_catalogs(ledger: Ledger, prefix: str | None = None) -> list[CatalogVersionInfo]:
    """Published catalog versions, oldest first (optionally those whose digest starts with
    `prefix`) (call `catch_up` first)."""
    query = select(
        catalog_index.c.version,
        catalog_index.c.name,
        catalog_index.c.entries,
        catalog_index.c.recorded_at_us,
        catalog_index.c.position,
    ).order_by(catalog_index.c.position)
    if prefix is not None:
        query = query.where(catalog_index.c.version.startswith(prefix, autoescape=True))
    async with ledger.store.read() as conn:
        rows = (await conn.execute(query)).all()
    return [CatalogVersionInfo(r[0], r[1], int(r[2]), _at(r[3]), int(r[4])) for r in rows]
