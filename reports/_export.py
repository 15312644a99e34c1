"""`export_parquet`: the decision record as Parquet datasets (docs/reports.md).

One pass over the ledger in position order, in chunks; each distinct outcome, policy and catalog
is fetched from the ledger the first time an exported decision refers to it (an indexed read of
its stream), checked against its digest, and exported once."""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ledger import Envelope, EventNotFoundError, Ledger
from reports._errors import ReportsError
from reports._rows import DecisionKey, RowBuilder, decision_key
from reports._schema import DATASETS
from reports._writer import DatasetWriter
from router.core import Catalog, Policy
from router.services.decisions import (
    ATTEMPT_FINISHED,
    DECISION_MADE,
    catalog_stream,
    outcome_digest,
    outcome_stream,
)

__all__ = ["ExportSummary", "Progress", "export_parquet", "fetch_references"]

Progress = Callable[[int, int], None]
"""Called with (positions read, positions to read) after every chunk."""

EventSink = Callable[[Envelope], None]

_WINDOW = 262_144
"""Recent decisions remembered for their attempts (older ones are looked up in the ledger)."""


def _micros(at: datetime | None) -> int | None:
    if at is None:
        return None
    if at.tzinfo is None:
        raise ReportsError(f"time {at.isoformat()} has no time zone: give one (e.g. Z)")
    return int(at.timestamp() * 1_000_000)


@dataclass
class ExportSummary:
    """What an export wrote: rows per dataset and the folder."""

    out: Path
    rows: dict[str, int] = field(default_factory=dict)
    decision_ids: list[str] | None = None

    @property
    def decisions(self) -> int:
        """Decisions exported."""
        return self.rows.get("decisions", 0)

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        return {"out": str(self.out), "rows": dict(self.rows)}


async def _first(ledger: Ledger, stream: str, what: str) -> Envelope:
    found = await ledger.stream(stream, 1, 1)
    if not found:
        raise ReportsError(f"the ledger has no {what} (stream {stream!r})")
    return found[0]


async def fetch_references(
    ledger: Ledger, rows: RowBuilder, payload: dict[str, Any], sink: EventSink | None
) -> None:
    """Load into `rows` the catalog, policy and outcome a decision payload refers to (each
    checked against the digest the decision records) unless it holds them already."""
    version, fingerprint, outcome = rows.missing(payload)
    if version is not None:
        envelope = await _first(ledger, catalog_stream(version), f"catalog {version}")
        catalog = Catalog.from_json(envelope.payload_json()["catalog"])
        if catalog.version != version:
            raise ReportsError(f"published catalog {version} has another content")
        rows.add_catalog(catalog, envelope.recorded_at_us)
        if sink is not None:
            sink(envelope)
    if fingerprint is not None:
        digest = payload["policy"]["digest"]
        envelope = await _first(ledger, fingerprint, f"policy {fingerprint}")
        policy = Policy.from_json(envelope.payload_json()["policy"])
        if policy.digest != digest:
            raise ReportsError(
                f"decision {payload['decision_id']}: policy {fingerprint} is recorded with "
                f"digest {policy.digest}, the decision names {digest}"
            )
        rows.add_policy(policy, envelope.recorded_at_us)
        if sink is not None:
            sink(envelope)
    if outcome is not None:
        envelope = await _first(ledger, outcome_stream(outcome), f"outcome {outcome}")
        document = envelope.payload_json()
        if outcome_digest(document) != outcome:
            raise ReportsError(f"recorded outcome {outcome} has another content")
        rows.add_outcome(outcome, document)
        if sink is not None:
            sink(envelope)


class _Scan:
    def __init__(
        self,
        ledger: Ledger,
        tenant: str | None,
        since: int | None,
        until: int | None,
        sink: EventSink | None,
    ) -> None:
        self.ledger = ledger
        self.tenant = tenant
        self.since = since
        self.until = until
        self.sink = sink
        self.rows = RowBuilder()
        self.window: OrderedDict[str, DecisionKey | None] = OrderedDict()
        self.ids: list[str] | None = [] if sink is not None else None

    def wanted(self, payload: dict[str, Any], at: int) -> bool:
        if self.tenant is not None and payload["tenant"] != self.tenant:
            return False
        if self.since is not None and at < self.since:
            return False
        return self.until is None or at < self.until

    def remember(self, decision_id: str, key: DecisionKey | None) -> None:
        self.window[decision_id] = key
        if len(self.window) > _WINDOW:
            self.window.popitem(last=False)

    async def key_of(self, decision_id: str) -> DecisionKey | None:
        if decision_id in self.window:
            return self.window[decision_id]
        try:
            envelope = await self.ledger.get(uuid.UUID(decision_id))
        except EventNotFoundError:
            raise ReportsError(
                f"an attempt refers to decision {decision_id}, not recorded"
            ) from None
        payload = envelope.payload_json()
        if not self.wanted(payload, envelope.recorded_at_us):
            return None
        return decision_key(payload, envelope.recorded_at_us)

    async def feed(self, envelope: Envelope) -> None:
        if envelope.type == DECISION_MADE:
            payload = json.loads(envelope.payload)
            at = envelope.recorded_at_us
            decision_id = payload["decision_id"]
            if not self.wanted(payload, at):
                self.remember(decision_id, None)
                return
            await fetch_references(self.ledger, self.rows, payload, self.sink)
            self.rows.add_decision(envelope.position, decision_id, at, payload)
            self.remember(decision_id, decision_key(payload, at))
            if self.sink is not None and self.ids is not None:
                self.sink(envelope)
                self.ids.append(decision_id)
        elif envelope.type == ATTEMPT_FINISHED:
            payload = json.loads(envelope.payload)
            key = await self.key_of(payload["decision_id"])
            if key is None:
                return
            self.rows.add_attempt(envelope.position, envelope.recorded_at_us, payload, key)
            if self.sink is not None:
                self.sink(envelope)


def _fresh_folder(base: Path) -> Path:
    if base.exists() and (not base.is_dir() or any(base.iterdir())):
        raise ReportsError(f"{base}: the export folder must be new or empty")
    base.mkdir(parents=True, exist_ok=True)
    return base


async def export_parquet(
    ledger: Ledger,
    out: Path | str,
    *,
    tenant: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
    sink: EventSink | None = None,
    chunk: int = 20_000,
) -> ExportSummary:
    """Export the decisions of `tenant` (default: all) recorded in [`since`, `until`) with
    their attempts, eliminations, rankings, catalogs and policies under `out` (a new or empty
    folder), one subfolder per dataset. `sink`, when given, receives every exported event
    (decisions, attempts, and the outcome, policy and catalog events they refer to)."""
    base = _fresh_folder(Path(out))
    scan = _Scan(ledger, tenant, _micros(since), _micros(until), sink)
    total = await ledger.count()
    writers = {name: DatasetWriter(base, name) for name in DATASETS}
    try:
        position = 0
        while True:
            batch = await ledger.read(position, limit=chunk)
            if not batch:
                break
            for envelope in batch:
                await scan.feed(envelope)
            for name, writer in writers.items():
                taken = scan.rows.take(name)
                if taken is not None:
                    await writer.put(taken)
            position = batch[-1].position + 1
            if progress is not None:
                progress(min(position, total), total)
    finally:
        for writer in writers.values():
            await writer.close()
    return ExportSummary(base, {n: w.rows for n, w in writers.items()}, scan.ids)
