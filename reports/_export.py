"""`export_parquet`: the decision record as Parquet datasets (docs/reports.md).

One pass over the ledger in position order, in chunks; each distinct outcome, policy and catalog
is fetched from the ledger the first time an exported decision refers to it (an indexed read of
its stream), checked against its digest, and exported once."""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ledger import Envelope, EventNotFoundError, Ledger
from reports._columnar import (
    CatalogColumns,
    Prepared,
    RecentDecisions,
    decision_batch,
    group_key,
    group_keys,
    parsed_ahead,
    tenant_member,
    utc_dates,
)
from reports._errors import ReportsError
from reports._folder import FolderManifest, written_keys
from reports._folderproof import FolderProof, check_layout, prove_folder
from reports._rows import DecisionKey, RowBuilder, decision_key
from reports._schema import DATASETS, TIMESTAMP
from reports._sequence import sequence_column, sequence_of
from reports._writer import DatasetWriter
from router.core import Catalog, Policy
from router.services.decisions import (
    ATTEMPT_FINISHED,
    DECISION_MADE,
    OUTCOME_RECORDED,
    DecisionPayload,
    catalog_stream,
    decode_decision,
    outcome_digest,
    outcome_stream,
)

__all__ = ["ExportSummary", "Progress", "export_parquet", "fetch_references"]

Progress = Callable[[int, int], None]
"""Called with (positions read, positions to read) after every chunk."""

EventSink = Callable[[Envelope], None]

_OUTCOME_DATASETS = ("eliminations", "rankings", "explanations")
_SPILL_ROWS = 64
"""Group rows held before they are handed to the writers: each holds lists as long as the
catalog (a ranking at 2,500 entries and 3 rank keys: ~70 kB), and the batch is held again in
the writer's queue and row group (`reports._writer`)."""

_TYPES = (DECISION_MADE, ATTEMPT_FINISHED, OUTCOME_RECORDED)
"""What the columnar pass reads: decisions and attempts, and the outcomes new groups need."""

_WINDOW = 65_536
"""Recent decisions remembered for their attempts (older ones are looked up in the ledger)."""


_NONE_EXPORTED = pa.table(
    {
        "event_id": pa.array([], pa.binary()),
        "tenant": pa.array([], pa.string()),
        "date": pa.array([], pa.string()),
        "catalog_version": pa.array([], pa.string()),
    }
)


def _uuid_bytes(text: str) -> bytes:
    """A decision id (UUID text) as its event id's 16 bytes."""
    try:
        return uuid.UUID(text).bytes
    except ValueError:
        raise ReportsError(f"an attempt names decision {text!r}, not a UUID") from None


def _micros(at: datetime | None) -> int | None:
    if at is None:
        return None
    if at.tzinfo is None:
        raise ReportsError(f"time {at.isoformat()} has no time zone: give one (e.g. Z)")
    # Exact integer arithmetic: through a float, a time with microseconds can lose one.
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@dataclass
class ExportSummary:
    """What an export wrote: rows per dataset and the folder."""

    out: Path
    rows: dict[str, int] = field(default_factory=dict)
    decision_ids: list[str] | None = None
    covered: dict[str, Any] | None = None
    tenant_decisions: int | None = None
    """Decisions of the selected tenant in the positions read, in the period or not."""

    @property
    def decisions(self) -> int:
        """Decisions exported."""
        return self.rows.get("decisions", 0)

    def empty_note(
        self, tenant: str | None, since: datetime | None, until: datetime | None
    ) -> str | None:
        """Why nothing was exported, when nothing was (None otherwise): the tenant has no
        decisions at all, or none in the period."""
        if self.decisions:
            return None
        period = f"[{_text(since)}, {_text(until)})"
        if tenant is not None and not self.tenant_decisions:
            return f"tenant {tenant!r} has no decisions in the ledger"
        if tenant is not None:
            return (
                f"none of the {self.tenant_decisions} decisions of tenant {tenant!r} was "
                f"recorded in the period {period}"
            )
        return f"no decisions were recorded in the period {period}"

    def to_json(self) -> dict[str, Any]:
        """JSON-able."""
        out: dict[str, Any] = {"out": str(self.out), "rows": dict(self.rows)}
        if self.covered is not None:
            checkpoint = self.covered["checkpoint"]
            out["from_position"] = self.covered["from_position"]
            out["to_position"] = self.covered["to_position"]
            out["checkpoint_tree_size"] = None if checkpoint is None else checkpoint["tree_size"]
        return out


def _text(at: datetime | None) -> str:
    return "…" if at is None else at.isoformat().replace("+00:00", "Z")


async def _first(ledger: Ledger, stream: str, what: str) -> Envelope:
    found = await ledger.stream(stream, 1, 1)
    if not found:
        raise ReportsError(f"the ledger has no {what} (stream {stream!r})")
    return found[0]


async def fetch_references(
    ledger: Ledger,
    rows: RowBuilder,
    payload: DecisionPayload,
    sink: EventSink | None,
    outcomes: Mapping[str, bytes] | None = None,
) -> None:
    """Load into `rows` the catalog, policy and outcome a decision payload refers to (each
    checked against the digest the decision records) unless it holds them already.

    `outcomes` (stream → payload): `OutcomeRecorded` events read already; an outcome found
    there is not read again (only without a `sink`, which wants the whole event)."""
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
        digest = payload.policy_digest
        envelope = await _first(ledger, fingerprint, f"policy {fingerprint}")
        policy = Policy.from_json(envelope.payload_json()["policy"])
        if policy.digest != digest:
            raise ReportsError(
                f"decision {payload.decision_id}: policy {fingerprint} is recorded with "
                f"digest {policy.digest}, the decision names {digest}"
            )
        rows.add_policy(policy, envelope.recorded_at_us)
        if sink is not None:
            sink(envelope)
    if outcome is not None:
        stream = outcome_stream(outcome)
        read = None if outcomes is None or sink is not None else outcomes.get(stream)
        if read is not None:
            document = json.loads(read)
        else:
            envelope = await _first(ledger, stream, f"outcome {outcome}")
            document = envelope.payload_json()
            if sink is not None:
                sink(envelope)
        if outcome_digest(document) != outcome:
            raise ReportsError(f"recorded outcome {outcome} has another content")
        rows.add_outcome(outcome, document)


class _Scan:
    def __init__(
        self,
        ledger: Ledger,
        tenant: str | None,
        since: int | None,
        until: int | None,
        sink: EventSink | None,
        window: int = _WINDOW,
    ) -> None:
        self.ledger = ledger
        self.window_size = window
        self.tenant = tenant
        self.since = since
        self.until = until
        self.sink = sink
        self.rows = RowBuilder()
        self.window: OrderedDict[str, DecisionKey | None] = OrderedDict()
        self.ids: list[str] | None = [] if sink is not None else None
        self.recent = RecentDecisions(window)
        self.needle = None if tenant is None else tenant_member(tenant)
        self.keys: dict[tuple[str, str, str], DecisionKey] = {}
        self.groups: set[str] = set()
        """The groups met (`group_key`): their rows are written or pending."""
        self._known: pa.Array | None = None
        self.tenant_decisions = 0
        self.columns = CatalogColumns()
        self.writers: dict[str, DatasetWriter] = {}
        self.outcomes: dict[str, bytes] = {}
        self._older_outcomes: dict[str, bytes] = {}

    def read_outcomes(self, events: pa.RecordBatch) -> None:
        """Keep the `OutcomeRecorded` events of this batch and the one before: an outcome is
        recorded just before the first decision that uses it, so most new groups find theirs
        here instead of in one indexed read each (older ones are still read that way)."""
        recorded = events.filter(pc.equal(events.column("type"), OUTCOME_RECORDED))
        streams = recorded.column("stream_id").to_pylist()
        found = dict(zip(streams, recorded.column("payload").to_pylist(), strict=True))
        self.outcomes = {**self._older_outcomes, **found}
        self._older_outcomes = found

    async def spill(self) -> None:
        """Hand the group rows over once they pile up: a chunk of decisions can meet thousands
        of new groups, each with lists of thousands of entries."""
        for name in _OUTCOME_DATASETS:
            if self.rows.pending(name) >= _SPILL_ROWS:
                taken = self.rows.take(name)
                if taken is not None:
                    await self.writers[name].put(taken)

    def wanted(self, tenant: str, at: int) -> bool:
        if self.tenant is not None and tenant != self.tenant:
            return False
        if self.since is not None and at < self.since:
            return False
        return self.until is None or at < self.until

    def remember(self, decision_id: str, key: DecisionKey | None) -> None:
        self.window[decision_id] = key
        if len(self.window) > self.window_size:
            self.window.popitem(last=False)

    async def feed_attempts(self, attempts: pa.RecordBatch) -> None:
        """The `AttemptFinished` events of a batch, partitioned like their decisions (found
        among the recent ones column-wise, older ones looked up in the ledger)."""
        payloads = [json.loads(raw) for raw in attempts.column("payload").to_pylist()]
        ids = [_uuid_bytes(payload["decision_id"]) for payload in payloads]
        held, found = self.recent.find(pa.array(ids, pa.binary()))
        for position, at, payload, known, hit in zip(
            attempts.column("position").to_pylist(),
            attempts.column("recorded_at_us").to_pylist(),
            payloads,
            held,
            found,
            strict=True,
        ):
            if not known:
                key = await self.key_of(payload["decision_id"])
            else:
                key = None if hit is None else self.key(*hit)
            if key is not None:
                self.rows.add_attempt(position, at, payload, key)

    async def key_of(self, decision_id: str) -> DecisionKey | None:
        if decision_id in self.window:
            return self.window[decision_id]
        try:
            envelope = await self.ledger.get(uuid.UUID(decision_id))
        except EventNotFoundError:
            raise ReportsError(
                f"an attempt refers to decision {decision_id}, not recorded"
            ) from None
        payload = decode_decision(envelope.payload)
        if not self.wanted(payload.tenant, envelope.recorded_at_us):
            return None
        return decision_key(payload, envelope.recorded_at_us)

    def key(self, tenant: str, date: str, version: str) -> DecisionKey:
        found = self.keys.get((tenant, date, version))
        if found is None:
            found = self.keys[tenant, date, version] = DecisionKey(tenant, date, version)
        return found

    async def feed_decisions(self, prepared: Prepared) -> pa.RecordBatch | None:
        """The fast path: the `DecisionMade` events of a `Ledger.scan_batches` batch,
        column-wise (see `reports._columnar`): no Python object per decision."""
        events, table = prepared.decisions, prepared.table
        if table is None:
            self.recent.add(prepared.every, _NONE_EXPORTED)
            return None
        payloads = events.column("payload")
        stamps = events.column("recorded_at_us")
        tenants = table.column("tenant").chunk(0)
        sequences = sequence_column(
            table.column("tenant"), events.column("stream_id"), events.column("stream_version")
        )
        mask = None
        if self.tenant is not None:
            mask = pc.equal(tenants, self.tenant)
            self.tenant_decisions += pc.sum(mask).as_py() or 0
        for bound, op in ((self.since, pc.greater_equal), (self.until, pc.less)):
            if bound is not None:
                inside = op(stamps, bound)
                mask = inside if mask is None else pc.and_(mask, inside)
        kept = events.column("position")
        ids = events.column("event_id")
        raw = payloads
        if mask is not None:
            raw = raw.filter(mask)
            table = table.filter(mask)
            stamps = stamps.filter(mask)
            sequences = sequences.filter(mask)
            kept = kept.filter(mask)
            ids = ids.filter(mask)
        exported = pa.table(
            {
                "event_id": ids,
                "tenant": table.column("tenant"),
                "date": utc_dates(stamps.cast(TIMESTAMP)),
                "catalog_version": table.column("catalog_version"),
            }
        )
        self.recent.add(prepared.every, exported)
        if table.num_rows == 0:
            return None
        await self.new_groups(table, raw)
        return decision_batch(table, kept, sequences, stamps, self.columns)

    async def new_groups(self, table: pa.Table, raw: pa.Array) -> None:
        """Add the rows of the groups first met in `table` (parsed decisions; `raw`: their
        payloads): one decision per distinct (outcome, order, policy, tokens) is decoded in
        full, and its group's rows (eliminations, rankings, explanation) come from it. The
        groups met already are told apart by hashing in Arrow."""
        keys = group_keys(table)
        versions = table.column("catalog_version").chunk(0)
        if self._known is None:
            self._known = pa.array(list(self.groups), pa.string())
        catalogs = pa.array(list(self.columns.offsets), pa.string())
        fresh = pc.or_(
            pc.invert(pc.is_in(keys, value_set=self._known)),
            pc.invert(pc.is_in(versions, value_set=catalogs)),
        )
        rows = np.flatnonzero(fresh.to_numpy(zero_copy_only=False))
        if not len(rows):
            return
        taken = pa.array(rows)
        for row, key, version in zip(
            rows.tolist(),
            keys.take(taken).to_pylist(),
            pc.take(versions, taken).to_pylist(),
            strict=True,
        ):
            if key in self.groups and version in self.columns.offsets:
                continue
            self.groups.add(key)
            self._known = None
            payload = decode_decision(raw[row].as_py())
            await fetch_references(self.ledger, self.rows, payload, None, self.outcomes)
            self.columns.add(self.rows.catalogs[version])
            self.rows.add_group(payload)
            await self.spill()

    async def feed(self, envelope: Envelope) -> None:
        if envelope.type == DECISION_MADE:
            payload = decode_decision(envelope.payload)
            at = envelope.recorded_at_us
            decision_id = payload.decision_id
            self.tenant_decisions += payload.tenant == self.tenant
            if not self.wanted(payload.tenant, at):
                self.remember(decision_id, None)
                return
            await fetch_references(self.ledger, self.rows, payload, self.sink)
            sequence = sequence_of(envelope, payload.tenant)
            self.rows.add_decision(envelope.position, decision_id, at, payload, sequence)
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


async def _flush(scan: _Scan, writers: dict[str, DatasetWriter]) -> None:
    for name, writer in writers.items():
        taken = scan.rows.take(name)
        if taken is not None:
            await writer.put(taken)


async def _envelope_pass(
    scan: _Scan,
    writers: dict[str, DatasetWriter],
    span: tuple[int, int],
    chunk: int,
    progress: Progress | None,
) -> None:
    """Every event as an `Envelope` (the bundle needs them whole), one at a time."""
    position, total = span
    while position < total:
        batch = await scan.ledger.read(position, limit=min(chunk, total - position))
        if not batch:
            return
        for envelope in batch:
            await scan.feed(envelope)
            await scan.spill()
        await _flush(scan, writers)
        position = batch[-1].position + 1
        if progress is not None:
            progress(min(position, total), total)


async def _columnar_pass(
    scan: _Scan,
    writers: dict[str, DatasetWriter],
    span: tuple[int, int],
    chunk: int,
    progress: Progress | None,
) -> None:
    """Decisions column-wise, `chunk` events at a time (`reports._columnar`), read as Arrow
    batches; the ledger reads the next batch while this one is parsed and written (the
    database's reader thread and the JSON parser both release the GIL)."""
    low, total = span
    batches = scan.ledger.scan_batches(low, stop=total, types=_TYPES, batch=chunk)
    async for prepared in parsed_ahead(batches, scan.needle):
        events = prepared.events
        scan.read_outcomes(events)
        if prepared.count:
            batch = await scan.feed_decisions(prepared)
            if batch is not None:
                await writers["decisions"].put(batch)
        # An attempt always comes after its decision: this batch's decisions are known.
        if prepared.count < events.num_rows:
            attempts = events.filter(pc.equal(events.column("type"), ATTEMPT_FINISHED))
            if attempts.num_rows:
                await scan.feed_attempts(attempts)
        await _flush(scan, writers)
        pa.default_memory_pool().release_unused()
        if progress is not None:
            progress(min(events.column("position")[-1].as_py() + 1, total), total)
    if progress is not None:
        progress(total, total)


def _fresh_folder(base: Path) -> Path:
    if base.exists() and (not base.is_dir() or any(base.iterdir())):
        raise ReportsError(
            f"{base}: the export folder must be new or empty (or give --append to add what is "
            "new since its last export)"
        )
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
    chunk: int = 5_000,
    window: int = _WINDOW,
    append: bool = False,
    prove: bool = False,
) -> ExportSummary:
    """Export the decisions of `tenant` (default: all) recorded in [`since`, `until`) with
    their attempts, eliminations, rankings, explanations, catalogs and policies under `out` (a
    new or empty folder), one subfolder per dataset, and the folder's `manifest.json` (the ledger
    position range covered and the latest signed checkpoint). `sink`, when given, receives every
    exported event (decisions, attempts, and the outcome, policy and catalog events they refer
    to).

    `append`: `out` holds an earlier export; add what the ledger recorded since (same tenant and
    period as the folder's manifest says), without writing again what the folder holds.

    `prove`: a tenant's export carries the completeness proof of its period in its manifest
    (`reports._folderproof`), and its data stops where the proof does.

    `chunk` is the number of ledger positions read at a time; `window` the number of recent
    decisions remembered for their attempts (an attempt of an older one costs a lookup)."""
    base = Path(out)
    if append:
        manifest = FolderManifest.read(base)
        manifest.check_selection(tenant, since, until)
        tenant = manifest.tenant
        since = None if manifest.since is None else datetime.fromisoformat(manifest.since)
        until = None if manifest.until is None else datetime.fromisoformat(manifest.until)
        low = manifest.next_position
        check_layout(base)
        if manifest.proof is not None and not prove:
            raise ReportsError(
                f"{base}: the folder proves its completeness; an append without a proof would "
                "leave that proof stale (append with one, or export into a new folder)"
            )
    else:
        base = _fresh_folder(base)
        manifest = FolderManifest.new(tenant, since, until)
        low = 0
    scan = _Scan(ledger, tenant, _micros(since), _micros(until), sink, window)
    if append:
        done = written_keys(base)
        scan.rows.written(done)
        scan.groups.update(group_key(key[1:]) for key in done if key[0] == "g")
    proof: FolderProof | None = None
    if prove and tenant is not None:
        proof = await prove_folder(ledger, tenant, since, until)
    checkpoint = await ledger.latest_checkpoint()
    # Positions are dense from 0: the end of the range is read off the primary key, not
    # counted (a count scans every event, and an append must not cost in the ledger's size).
    total = await ledger.last_position() + 1
    if proof is not None:
        total = max(low, proof.stop(total))
    writers = {name: DatasetWriter(base, name, f"part-{low}-") for name in DATASETS}
    scan.writers = writers
    try:
        if sink is None:
            await _columnar_pass(scan, writers, (low, total), chunk, progress)
        else:
            await _envelope_pass(scan, writers, (low, total), chunk, progress)
    finally:
        for writer in writers.values():
            await writer.close()
    rows = {n: w.rows for n, w in writers.items()}
    record = manifest.add(low, total, checkpoint, rows)
    if proof is not None:
        manifest.proof = proof.members()
    manifest.write(base)
    return ExportSummary(base, rows, scan.ids, record, scan.tenant_decisions)
