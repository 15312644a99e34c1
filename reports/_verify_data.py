"""What a bundle's data must hold, made from its proven events (docs/bundles.md, "What `bundle
verify` checks", steps 4 and 7).

One pass over the proven events, a batch at a time: each decision is decoded by the decision
record's own decoder (`decode_decision`) and checked against the bundle's tenant, period and
sequence; the catalog, policy and outcome it refers to must be proven events with the right
digests (resolved once per distinct value); its group's rows (eliminations, ranking,
explanation) are made once per distinct group; and the `decisions` rows of a batch are built
column-wise from the payloads, like the exporter builds them. The rows go to `ExpectedRows`,
which the data is then compared with in DuckDB."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from ledger import Checkpoint, Envelope
from reports._bundle import document_file
from reports._columnar import CatalogColumns, decision_batch, parse_decisions
from reports._completeness import SequenceCheck
from reports._expect import ExpectedRows
from reports._rows import DecisionKey, RowBuilder, decision_key, utc_date
from reports._verify_events import EventBatch
from reports._verify_result import BundleVerification
from reports._verify_zip import BundleZip
from router.core import Catalog, Policy, RouterError
from router.services.decisions import (
    ATTEMPT_FINISHED,
    CATALOG_PUBLISHED,
    DECISION_MADE,
    OUTCOME_RECORDED,
    POLICY_RECORDED,
    DecisionPayload,
    RecordMismatchError,
    decode_decision,
    outcome_digest,
    tenant_stream,
)

__all__ = ["ExpectedData", "referenced_files"]

_SPILL_EVERY = 256
"""Decisions between two hand-overs of the rows built so far (group rows hold catalog-long
lists)."""

_WINDOW = 65_536
"""Recent decisions remembered for their attempts (an attempt of an older one costs a second
pass over the events, for the few such decisions only)."""


def _micros(text: str | None) -> int | None:
    if text is None:
        return None
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _json(payload: bytes) -> Any:
    """A payload's JSON value (orjson), or the bytes themselves when orjson refuses them:
    `decode_decision` then parses them with the standard parser, as it always did."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload


class ExpectedData:
    """Streams the proven events of a bundle into the rows its data must hold."""

    def __init__(
        self,
        bundle: BundleZip,
        manifest: Mapping[str, Any],
        rows: ExpectedRows,
        result: BundleVerification,
    ) -> None:
        self.bundle = bundle
        self.result = result
        self.expected = rows
        self.rows = rows.rows
        self.tenant = manifest.get("tenant")
        self.since = _micros(manifest.get("since"))
        self.until = _micros(manifest.get("until"))
        self.references: dict[tuple[str, int], Envelope] = {}
        self.recent: OrderedDict[str, tuple[str, int, str]] = OrderedDict()
        """Recent decisions' tenant, time and catalog version: what their attempts need."""
        self.late: list[Envelope] = []
        self.sequence = SequenceCheck(manifest, self.since, self.until)
        self.columns = CatalogColumns()

    def problem(self, text: str) -> None:
        """A problem of the verification."""
        self.result.problems.append(text)

    def reference(self, stream: str, kind: str) -> Envelope | None:
        """The proven first event of `stream` when it is of type `kind`."""
        found = self.references.get((stream, 1))
        return found if found is not None and found.type == kind else None

    def run(self, checkpoint: Checkpoint) -> None:
        """One pass over the proven events; a second one, for the decisions of the attempts
        whose decision was not among the recent ones."""
        stream = self.sequence.stream
        for batch in self.bundle.events(checkpoint):
            self.result.events += len(batch)
            ours: list[int] = []
            chosen: list[tuple[int, bool]] = []
            attempts: list[int] = []
            for i, (stream_id, kind) in enumerate(zip(batch.stream_ids, batch.types, strict=True)):
                if stream_id == stream:
                    ours.append(i)
                elif kind == DECISION_MADE:
                    chosen.append((i, False))
                elif kind == ATTEMPT_FINISHED:
                    attempts.append(i)
                else:
                    envelope = batch.envelope(i)
                    self.references.setdefault((stream_id, envelope.stream_version), envelope)
            if ours:
                chosen.extend((i, True) for i in self._sequenced(batch, ours))
                chosen.sort()
            if chosen:
                self.decisions(batch, chosen)
            # After the batch's decisions: an attempt follows its decision in the log.
            for i in attempts:
                self.attempt(batch.envelope(i), None)
            self.expected.spill()
        if self.late:
            self.late_attempts(checkpoint)

    def _sequenced(self, batch: EventBatch, ours: list[int]) -> list[int]:
        """The events of the tenant's sequence that are decisions of the data (the others are
        its boundaries and seals): a run of decisions inside the period at once, else one by
        one."""
        if all(batch.types[i] == DECISION_MADE for i in ours) and self.sequence.feed_inside(
            [batch.stream_versions[i] for i in ours],
            [batch.recorded_at_us[i] for i in ours],
            [batch.event_ids[i] for i in ours],
        ):
            return ours
        return [i for i in ours if self.sequence.feed(batch.envelope(i))]

    def decisions(self, batch: EventBatch, chosen: list[tuple[int, bool]]) -> None:
        """Check the decisions of a batch (index, whether in the tenant's sequence) and add
        their rows."""
        kept: list[tuple[int, DecisionPayload, int | None]] = []
        for count, (i, sequenced) in enumerate(chosen, start=1):
            payload = self.decision(batch, i, sequenced)
            if payload is not None:
                # The `sequence` column: its version in its own tenant's sequence.
                own = batch.stream_ids[i] == tenant_stream(payload.tenant)
                kept.append((i, payload, batch.stream_versions[i] if own else None))
                self.result.decisions += 1
            if not count % _SPILL_EVERY:
                self.expected.spill()  # each decision adds at most one group's rows
        if not kept:
            return
        for version in {payload.catalog_version for _, payload, _ in kept}:
            self.columns.add(self.rows.catalogs[version])
        try:
            table = parse_decisions([batch.payloads[i] for i, _, _ in kept])
            rows = decision_batch(
                table,
                pa.array([batch.positions[i] for i, _, _ in kept], pa.int64()),
                pa.array([sequence for _, _, sequence in kept], pa.int64()),
                pa.array([batch.recorded_at_us[i] for i, _, _ in kept], pa.int64()),
                self.columns,
            )
        except (pa.ArrowException, KeyError, TypeError, ValueError):
            # Payloads that do not parse column-wise (a value of another type than a
            # decision's): their rows one by one, from the decoded payloads.
            for i, payload, sequence in kept:
                self.rows.add_decision(
                    batch.positions[i],
                    batch.event_ids[i],
                    batch.recorded_at_us[i],
                    payload,
                    sequence,
                )
            return
        self.expected.put("decisions", rows)

    def decision(self, batch: EventBatch, i: int, sequenced: bool) -> DecisionPayload | None:
        """Check one decision; its decoded payload once it holds together with what it refers
        to (None: said why)."""
        rows = self.rows
        event_id = batch.event_ids[i]
        name = "decision " + event_id
        try:
            payload = decode_decision(_json(batch.payloads[i]))
        except RecordMismatchError as exc:
            self.problem(f"{name}: its payload is {exc}")
            return None
        if payload.decision_id != event_id:
            self.problem(f"{name}: its payload names decision {payload.decision_id}")
            return None
        if payload.tenant != self.tenant:
            self.problem(f"{name}: tenant {payload.tenant!r}, the bundle is {self.tenant!r}")
        if not sequenced:
            self.sequence.outside(batch.envelope(i), payload.fingerprint)
        at = batch.recorded_at_us[i]
        if (self.since is not None and at < self.since) or (
            self.until is not None and at >= self.until
        ):
            self.problem(f"{name}: recorded outside the bundle's period")
        version, fingerprint, digest = rows.missing(payload)
        if version is not None and not self._catalog(name, version):
            return None
        if fingerprint is not None and not self._policy(name, fingerprint, payload):
            return None
        if digest is not None and not self._outcome(name, digest):
            return None
        rows.add_group(payload)
        self.recent[event_id] = (payload.tenant, at, payload.catalog_version)
        if len(self.recent) > _WINDOW:
            self.recent.popitem(last=False)
        return payload

    def _catalog(self, name: str, version: str) -> bool:
        found = self.reference(f"catalog/{version}", CATALOG_PUBLISHED)
        if found is None:
            self.problem(f"{name}: catalog {version} is not among the proven events")
            return False
        catalog = Catalog.from_json(found.payload_json()["catalog"])
        if catalog.version != version:
            self.problem(f"catalog {version}: its proven content has version {catalog.version}")
            return False
        self.rows.add_catalog(catalog, found.recorded_at_us)
        return True

    def _policy(self, name: str, fingerprint: str, payload: DecisionPayload) -> bool:
        found = self.reference(fingerprint, POLICY_RECORDED)
        if found is None:
            self.problem(f"{name}: policy {fingerprint} is not among the proven events")
            return False
        policy = Policy.from_json(found.payload_json()["policy"])
        if policy.digest != payload.policy_digest:
            self.problem(
                f"policy {fingerprint}: its proven content has digest "
                f"{policy.digest}, {name} names {payload.policy_digest}"
            )
            return False
        self.rows.add_policy(policy, found.recorded_at_us)
        return True

    def _outcome(self, name: str, digest: str) -> bool:
        found = self.reference(f"outcome/{digest}", OUTCOME_RECORDED)
        if found is None:
            self.problem(f"{name}: outcome {digest} is not among the proven events")
            return False
        document = found.payload_json()
        if outcome_digest(document) != digest:
            self.problem(f"outcome {digest}: its proven content has another digest")
            return False
        self.rows.add_outcome(digest, document)
        return True

    def attempt(self, envelope: Envelope, key: DecisionKey | None) -> None:
        """Add an attempt's row (partitioned like its decision); one whose decision is not
        among the recent ones waits for the second pass."""
        payload = envelope.payload_json()
        if key is None:
            recent = self.recent.get(payload.get("decision_id"))
            if recent is None:
                self.late.append(envelope)
                return
            tenant, at, version = recent
            key = DecisionKey(tenant, utc_date(at), version)
        self.rows.add_attempt(envelope.position, envelope.recorded_at_us, payload, key)

    def late_attempts(self, checkpoint: Checkpoint) -> None:
        """The decisions of the waiting attempts, from a second pass over the events."""
        wanted = {e.payload_json().get("decision_id") for e in self.late}
        keys: dict[str, DecisionKey] = {}
        for batch in self.bundle.events(checkpoint, problem=lambda _: None):
            for i, kind in enumerate(batch.types):
                decision_id = batch.event_ids[i]
                if kind != DECISION_MADE or decision_id in self.sequence.boundaries:
                    continue
                if decision_id in wanted:
                    try:
                        payload = decode_decision(batch.payloads[i])
                    except RecordMismatchError:
                        continue  # named by the first pass
                    if payload.decision_id == decision_id:
                        keys[decision_id] = decision_key(payload, batch.recorded_at_us[i])
        for envelope in self.late:
            decision_id = envelope.payload_json().get("decision_id")
            key = keys.get(decision_id)
            if key is None:
                self.problem(
                    f"attempt event {envelope.event_id}: its decision {decision_id} is not in "
                    "the bundle"
                )
                continue
            self.attempt(envelope, key)

    def release(self) -> None:
        """Drop what the pass over the events held (catalogs, referenced events, recent
        decisions): what follows it needs none of it."""
        self.references.clear()
        self.recent.clear()
        self.late.clear()
        self.columns = CatalogColumns()
        self.rows = self.expected.rows = RowBuilder()


def referenced_files(bundle: BundleZip, data: ExpectedData) -> None:
    """Every policy and catalog the decisions refer to is in `policies/` / `catalogs/`, and its
    recomputed digest is its name."""
    rows = data.rows
    for digest in sorted(rows.policies):
        name = f"policies/{digest}.json"
        raw = bundle.read(name)
        if raw is None:
            bundle.problem(f"{name}: missing (the decisions refer to policy digest {digest})")
            continue
        try:
            found = Policy.from_json(json.loads(raw)).digest
        except (json.JSONDecodeError, UnicodeDecodeError, RouterError) as exc:
            bundle.problem(f"{name}: not a policy ({exc})")
            continue
        if found != digest:
            bundle.problem(f"{name}: its digest is {found}")
    for version in sorted(rows.catalogs):
        name = f"catalogs/{version}.json"
        raw = bundle.read(name)
        if raw is None:
            bundle.problem(f"{name}: missing (the decisions refer to catalog {version})")
            continue
        proven = data.reference(f"catalog/{version}", CATALOG_PUBLISHED)
        if proven is not None and raw == document_file(proven.payload_json()["catalog"]):
            continue  # the proven catalog's own bytes (a catalog is large: not parsed again)
        try:
            found = Catalog.from_json(json.loads(raw)).version
        except (json.JSONDecodeError, UnicodeDecodeError, RouterError) as exc:
            bundle.problem(f"{name}: not a catalog ({exc})")
            continue
        if found != version:
            bundle.problem(f"{name}: its version is {found}")
