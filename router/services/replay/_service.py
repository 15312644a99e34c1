"""`ReplayService`: stream the selected decisions, evaluate each distinct group once, report."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ledger import EventRecord, NewEvent, uuid7
from router.core import Catalog, MissingTokensError, Policy, Tokens, effective_tokens
from router.services.decisions import (
    DecisionError,
    DecisionService,
    RecordMismatchError,
    decode_failures,
    outcome_stream,
    tenant_stream,
)
from router.services.replay._columnar import AGAINST_RESULTS, ORIGINAL_RESULTS, Columnar
from router.services.replay._compare import (
    Change,
    Evaluated,
    Mismatch,
    Recorded,
    compare,
    evaluate_once,
    recorded_key,
    verify,
)
from router.services.replay._errors import ReplayError
from router.services.replay._report import (
    EXAMPLES,
    Aggregate,
    ReplayReport,
    RuleImpact,
    summary_digest,
)
from router.services.replay._scan import (
    DecisionFilter,
    Row,
    count_decisions,
    last_position,
    missing_ids,
    payload_fingerprint,
    scan_batches,
)

__all__ = ["REPLAY_RUN", "REPLAY_SCHEMA", "ReplayService", "RowSink"]

REPLAY_RUN = "ReplayRun"
REPLAY_SCHEMA = "unhardcoded.replay/1"

RowSink = Callable[[list[dict[str, Any]]], None]
"""Receives the per-decision rows of each page (see `ReplayService` for their columns)."""
Progress = Callable[[int, int], None]


_SEQUENCED = "decisions/"
"""Group key of a decision recorded in its own tenant's sequence (`tenant_stream`): decisions
of every tenant with the same outcome-relevant content share one group."""


def _home(stream_id: str, tenant: str) -> str:
    """The stream part of a decision's group key: `_SEQUENCED` when the decision is in its
    tenant's sequence, else the stream itself (the policy's, in ledgers of release 0.1.0, which
    `_policy` checks)."""
    return _SEQUENCED if stream_id == tenant_stream(tenant) else stream_id


class _Lru(OrderedDict[Any, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        if len(self) > self.size:
            self.popitem(last=False)

    def put(self, key: Any, value: Any) -> None:
        self[key] = value


class _UnreadableError(ReplayError):
    def __init__(self, mismatch: Mismatch) -> None:
        self.mismatch = mismatch


class ReplayService:
    """Replay recorded decisions (docs/replay.md).

    `original`: re-evaluate every selected decision with the policy and catalog version it
    recorded and check each recorded field (`_compare.FIELDS`) is reproduced. `against`:
    re-evaluate with another catalog (and/or policy) and report what changes.

    Decisions are read in pages by position; distinct groups (see `Recorded`) are evaluated
    once and kept in a bounded LRU of `group_cache` entries, so memory does not grow with the
    ledger. A sink receives per page one row per decision:

    - original: `decision_id, position, recorded_at_us, tenant, fingerprint, catalog_version,
      ok, field, recorded, replayed`;
    - against: `decision_id, position, recorded_at_us, tenant, fingerprint, catalog_version,
      target_version, previous, selected, changed, previous_cost, cost, cost_delta,
      previous_status, removed_by, no_entry_passes, error`.

    Every run is recorded as a `ReplayRun` event (stream `replay/{run id}`) with its parameters
    and the SHA-256 of its summary, unless `record=False`.
    """

    PAGE = 10_000
    """Decisions per page: DuckDB's cost per statement is shared by many rows, while the page,
    the next one being read and DuckDB's work on it keep the peak under 500 MB (20,000 cost
    40-70 MB more for no measurable speed)."""

    def __init__(
        self, decisions: DecisionService, *, page: int = PAGE, group_cache: int = 65_536
    ) -> None:
        self.decisions = decisions
        self.ledger = decisions.ledger
        self.page = page
        self._evaluated: _Lru = _Lru(group_cache)
        self._catalogs: _Lru = _Lru(16)
        self._outcomes: _Lru = _Lru(4096)
        self._index_maps: _Lru = _Lru(16)
        self._digests: _Lru = _Lru(4096)

    # -- loading ---------------------------------------------------------------------------

    async def _catalog(self, version: str) -> Catalog:
        catalog = self._catalogs.get(version)
        if catalog is None:
            try:
                catalog = await self.decisions.catalog_version(version)
            except DecisionError as exc:
                raise _UnreadableError(Mismatch("catalog_version", version, str(exc))) from None
            self._catalogs.put(version, catalog)
        return catalog

    async def _policy(self, record: Recorded) -> Policy:
        if record.stream_id not in (record.fingerprint, _SEQUENCED):
            # In another tenant's sequence, or (0.1.0) in another policy's stream.
            field = "tenant" if record.stream_id.startswith(_SEQUENCED) else "policy"
            raise _UnreadableError(
                Mismatch(field, record.fingerprint, f"recorded in stream {record.stream_id}")
            )
        try:
            return await self.decisions.policy(record.fingerprint, record.policy_digest)
        except DecisionError as exc:
            raise _UnreadableError(Mismatch("policy", record.policy_digest, str(exc))) from None

    def _evaluate(
        self,
        report: ReplayReport,
        policy: Policy,
        catalog: Catalog,
        tokens: Tokens | None,
        with_outcome: bool,
    ) -> Evaluated:
        key = (policy.digest, catalog.version, tokens, with_outcome)
        found = self._evaluated.get(key)
        if found is None:
            found = evaluate_once(policy, catalog, tokens, with_outcome, self._digests)
            self._evaluated.put(key, found)
            report.evaluations += 1
        return found

    async def _failures(self, digest: str, catalog: Catalog) -> dict[str, npt.NDArray[np.uint8]]:
        """Per rule, the failure bitmap of the recorded outcome `digest` over `catalog` (packed:
        a few hundred bytes a rule, so many outcomes stay cached)."""
        found = self._outcomes.get(digest)
        if found is None:
            events = await self.ledger.stream(outcome_stream(digest), 1, 1)
            found = {}
            if events:  # absent: the rules' "before" is empty (every removal counts as new)
                outcome = events[0].payload_json()
                if int(outcome["entries"]) == len(catalog.entries):
                    for rule, bitmap in zip(
                        outcome["rules"], decode_failures(outcome), strict=True
                    ):
                        found[rule] = np.frombuffer(bitmap, dtype=np.uint8)
            self._outcomes.put(digest, found)
        return found

    def _index_map(self, old: Catalog, new: Catalog) -> npt.NDArray[np.intp]:
        """Per entry of `old`, the index of the entry with the same id in `new` (-1: none)."""
        key = (old.version, new.version)
        found = self._index_maps.get(key)
        if found is None:
            found = np.array([new.index_of(e.id) if e.id in new else -1 for e in old.entries])
            found = found.astype(np.intp, copy=False)
            self._index_maps.put(key, found)
        return found

    # -- running -----------------------------------------------------------------------------

    async def _prepare(
        self, mode: str, flt: DecisionFilter, parameters: dict[str, Any], progress: Progress | None
    ) -> tuple[ReplayReport, int, int]:
        if flt.decision_ids:
            absent = await missing_ids(self.ledger, flt.decision_ids)
            if absent:
                listed = ", ".join(str(d) for d in absent[:10])
                raise ReplayError(f"{len(absent)} decision id(s) are not recorded: {listed}")
        upto = await last_position(self.ledger)
        total = await count_decisions(self.ledger, flt, upto) if progress is not None else 0
        report = ReplayReport(str(uuid7()), mode, {**parameters, "filter": flt.to_json()})
        report.parameters["up_to_position"] = upto
        return report, upto, total

    async def _finish(self, report: ReplayReport, record: bool) -> ReplayReport:
        report.summary_digest = summary_digest(report)
        if record:
            payload = {
                "schema": REPLAY_SCHEMA,
                "run_id": report.run_id,
                "mode": report.mode,
                "parameters": report.parameters,
                "decisions": report.decisions,
                "mismatches": report.mismatches,
                "changed": report.changed,
                "errors": report.errors,
                "summary_digest": report.summary_digest,
            }
            (envelope,) = await self.ledger.append(
                NewEvent(REPLAY_RUN, f"replay/{report.run_id}", payload),
                expected_version=0,
            )
            report.position = envelope.position
        return report

    async def original(
        self,
        flt: DecisionFilter | None = None,
        *,
        sink: RowSink | None = None,
        progress: Progress | None = None,
        record: bool = True,
    ) -> ReplayReport:
        """Re-evaluate each selected decision with its own policy and catalog version."""
        flt = flt or DecisionFilter()
        report, upto, total = await self._prepare("original", flt, {}, progress)
        cols = Columnar(ORIGINAL_RESULTS, flt, original=True)
        scanned = 0
        try:
            async for batch in scan_batches(self.ledger, flt, upto, self.page):
                cols.load(batch)
                slow: list[tuple[int, str | None, str, int | None]] = []
                results: list[dict[str, Any]] = []
                for event in cols.slow():
                    row = _row(event)
                    gid = None
                    tenant: Any = None
                    if _selected(flt, event):
                        tenant, record_, mismatch = await self._verify_slow(row, report)
                        gid = cols.allocate()
                        results.append(_original_result(gid, record_, mismatch))
                    slow.append((row.position, _text(tenant), row.fingerprint, gid))
                new: list[tuple[str, int]] = []
                for key, home, event in cols.new_groups():
                    record_, mismatch = await self._verify_group(home, event.payload, report)
                    new.append((key, cols.allocate()))
                    results.append(_original_result(new[-1][1], record_, mismatch))
                cols.commit(results, new, slow)
                report.decisions += cols.size
                for field, count in cols.mismatch_fields():
                    report.mismatches += count
                    report.mismatch_fields[field] += count
                room = EXAMPLES - len(report.examples)
                if room > 0 and report.mismatches > len(report.examples):
                    for ex in cols.original_rows(True, room):
                        report.examples.append(
                            {k: ex[k] for k in ("decision_id", "position", *_MISMATCH)}
                        )
                if sink is not None:
                    rows = cols.original_rows(False, None)
                    if rows:
                        sink(rows)
                scanned += batch.num_rows
                if progress is not None:
                    progress(scanned, total)
        finally:
            cols.close()
        return await self._finish(report, record)

    async def _verify_slow(
        self, row: Row, report: ReplayReport
    ) -> tuple[str | None, Recorded | None, Mismatch | None]:
        """A payload without the canonical layout: parsed fully, verified on its own."""
        try:
            payload = json.loads(row[4])
            tenant = payload.get("tenant")
            decision_id = str(payload["decision_id"]).encode()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return None, None, Mismatch("payload", "a decision payload", f"unreadable: {exc!r}")
        if decision_id != _uuid_text(row[1]):
            return tenant, None, _id_mismatch(decision_id, row[1])
        stream_id = _home(row[5], tenant) if isinstance(tenant, str) else row[5]
        record, mismatch = await self._verify_group(stream_id, row[4], report)
        return tenant, record, mismatch

    async def _verify_group(
        self, stream_id: str, raw: bytes, report: ReplayReport
    ) -> tuple[Recorded | None, Mismatch | None]:
        report.groups += 1
        try:
            record = recorded_key(stream_id, raw)
        except RecordMismatchError as exc:
            return None, Mismatch("payload", "a decision payload", f"unreadable: {exc}")
        try:
            policy = await self._policy(record)
            catalog = await self._catalog(record.catalog_version)
            tokens = effective_tokens(policy, record.request_features)
            evaluated = self._evaluate(report, policy, catalog, tokens, True)
            return record, verify(record, policy, evaluated)
        except _UnreadableError as exc:
            return record, exc.mismatch
        except MissingTokensError as exc:
            return record, Mismatch("tokens", "none", str(exc))

    async def against(
        self,
        target: Catalog,
        flt: DecisionFilter | None = None,
        *,
        policy: Policy | None = None,
        sink: RowSink | None = None,
        progress: Progress | None = None,
        record: bool = True,
    ) -> ReplayReport:
        """Re-evaluate each selected decision against `target` (and `policy` instead of the
        recorded one, when given): what changes per decision, per tenant, policy and rule."""
        flt = flt or DecisionFilter()
        parameters = {
            "target_catalog": target.version,
            "policy": None if policy is None else policy.digest,
        }
        report, upto, total = await self._prepare("against", flt, parameters, progress)
        seen_pairs: set[tuple[str, str, str]] = set()
        cols = Columnar(AGAINST_RESULTS, flt, original=False)
        scanned = 0
        try:
            async for batch in scan_batches(self.ledger, flt, upto, self.page):
                cols.load(batch)
                slow: list[tuple[int, str | None, str, int | None]] = []
                results: list[dict[str, Any]] = []
                for event in cols.slow():
                    row = _row(event)
                    found: tuple[Recorded | None, Change | None, str | None]
                    gid = None
                    tenant = ""
                    if _selected(flt, event):
                        try:
                            tenant = str(json.loads(row.payload)["tenant"])
                        except (ValueError, KeyError, TypeError) as exc:
                            found = (None, None, f"unreadable payload: {exc!r}")
                        else:
                            found = await self._change_group(
                                row, target, policy, report, seen_pairs
                            )
                        gid = cols.allocate()
                        results.append(_against_result(gid, *found))
                    slow.append((row.position, tenant, row.fingerprint, gid))
                new: list[tuple[str, int]] = []
                for key, _, event in cols.new_groups():
                    found = await self._change_group(
                        _row(event), target, policy, report, seen_pairs
                    )
                    new.append((key, cols.allocate()))
                    results.append(_against_result(new[-1][1], *found))
                cols.commit(results, new, slow)
                report.decisions += cols.size
                cols.count_page()
                errors, first = cols.errors_and_changes(EXAMPLES - len(report.examples))
                report.errors += errors
                report.examples.extend(_against_example(row) for row in first)
                if sink is not None:
                    rows = [_against_row(row, target) for row in cols.against_rows()]
                    if rows:
                        sink(rows)
                scanned += batch.num_rows
                if progress is not None:
                    progress(scanned, total)
                if len(seen_pairs) > 100_000:
                    seen_pairs.clear()  # re-adding a pair's ids to the rule sets is idempotent
            for group in cols.tally():
                self._aggregate(
                    report, group["tenant"], group["fingerprint"], _change(group), group["n"]
                )
        finally:
            cols.close()
        return await self._finish(report, record)

    @staticmethod
    def _aggregate(
        report: ReplayReport, tenant: str, fingerprint: str, change: Change, count: int
    ) -> None:
        ineligible = change.previous_status in ("removed", "absent")
        for key, table in ((tenant, report.by_tenant), (fingerprint, report.by_policy)):
            agg = table.get(key)
            if agg is None:
                agg = table[key] = Aggregate()
            agg.decisions += count
            agg.changed += count * change.changed
            agg.no_entry_passes += count * change.no_entry_passes
            agg.previous_ineligible += count * ineligible
            if change.cost_delta is not None:
                agg.costed += count
                agg.cost_before += count * (change.previous_cost or 0.0)
                agg.cost_after += count * (change.cost or 0.0)
        report.changed += count * change.changed
        report.no_entry_passes += count * change.no_entry_passes
        report.previous_ineligible += count * ineligible
        for rule in change.removed_by:
            impact = report.by_rule.get(rule)
            if impact is None:
                impact = report.by_rule[rule] = RuleImpact()
            impact.decisions += count

    async def _change_group(
        self,
        row: Row,
        target: Catalog,
        override: Policy | None,
        report: ReplayReport,
        seen_pairs: set[tuple[str, str, str]],
    ) -> tuple[Recorded | None, Change | None, str | None]:
        report.groups += 1
        try:
            record = recorded_key(row[2], row[4])
        except RecordMismatchError as exc:
            return None, None, f"unreadable decision payload: {exc}"
        try:
            old_policy = await self._policy(record)
            old_catalog = await self._catalog(record.catalog_version)
            policy = override or old_policy
            tokens = effective_tokens(policy, record.request_features)
            evaluated = self._evaluate(report, policy, target, tokens, False)
            change = compare(record, old_catalog, evaluated)
            pair = (record.outcome, policy.digest, str(tokens))
            if pair not in seen_pairs:
                seen_pairs.add(pair)
                await self._rule_impact(report, record, old_catalog, evaluated)
        except _UnreadableError as exc:
            return record, None, f"{exc.mismatch.field}: {exc.mismatch.replayed}"
        except MissingTokensError as exc:
            return record, None, str(exc)
        return record, change, None

    async def _rule_impact(
        self, report: ReplayReport, record: Recorded, old_catalog: Catalog, new: Evaluated
    ) -> None:
        """Add the entries each rule newly removes, or no longer removes, to `report.by_rule`.

        The sets are compared as bitmaps over the target catalog (numpy), the recorded ones
        mapped there by id; an entry the target does not have is no longer removed. Only the
        differences become ids."""
        old = await self._failures(record.outcome, old_catalog)
        to_new = self._index_map(old_catalog, new.catalog)
        size = len(new.catalog.entries)
        for row, rule in enumerate(new.rule_ids):
            now = new.bits[row]
            packed = old.get(rule)
            before_old = (
                np.zeros(0, np.intp)
                if packed is None
                else np.flatnonzero(np.unpackbits(packed, count=len(old_catalog.entries)))
            )
            mapped = to_new[before_old]
            gone = before_old[mapped < 0]
            before = np.zeros(size, dtype=bool)
            before[mapped[mapped >= 0]] = True
            packed_before = np.packbits(before)
            added = now & ~packed_before
            dropped = packed_before & ~now
            if added.any() or dropped.any() or gone.size:
                impact = report.by_rule.get(rule)
                if impact is None:
                    impact = report.by_rule[rule] = RuleImpact()
                entries, old_entries = new.catalog.entries, old_catalog.entries
                for bits, into in (
                    (added, impact.newly_removed),
                    (dropped, impact.no_longer_removed),
                ):
                    into.update(
                        entries[i].id for i in np.flatnonzero(np.unpackbits(bits, count=size))
                    )
                impact.no_longer_removed.update(old_entries[i].id for i in gone.tolist())


def _row(event: EventRecord) -> Row:
    payload = event.payload
    return Row(
        event.position,
        event.event_id,
        payload_fingerprint(payload),
        event.recorded_at_us,
        payload,
        event.stream_id,
    )


def _selected(flt: DecisionFilter, event: EventRecord) -> bool:
    """Whether a payload read one by one has the tenant and policy asked for (an unreadable
    one has neither)."""
    try:
        return flt.matches(event)
    except ValueError:
        return flt.tenant is None and flt.fingerprint is None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _uuid_text(raw: bytes) -> bytes:
    """The canonical text of a UUID given as 16 bytes (what a payload's `decision_id` holds)."""
    h = bytes(raw).hex().encode()
    return b"-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))


def _id_mismatch(recorded: bytes, event_id: bytes) -> Mismatch:
    return Mismatch(
        "decision_id", recorded.decode("utf-8", "replace"), _uuid_text(event_id).decode()
    )


_MISMATCH = ("field", "recorded", "replayed")


def _original_result(
    gid: int, record: Recorded | None, mismatch: Mismatch | None
) -> dict[str, Any]:
    return {
        "gid": gid,
        "catalog_version": None if record is None else record.catalog_version,
        **dict.fromkeys(_MISMATCH),
        **({} if mismatch is None else mismatch.to_json()),
    }


def _against_result(
    gid: int, record: Recorded | None, change: Change | None, error: str | None
) -> dict[str, Any]:
    return {
        "gid": gid,
        "catalog_version": None if record is None else record.catalog_version,
        "error": error,
        "previous": None if change is None else change.previous,
        "selected": None if change is None else change.selected,
        "changed": None if change is None else change.changed,
        "previous_cost": None if change is None else change.previous_cost,
        "cost": None if change is None else change.cost,
        "cost_delta": None if change is None else change.cost_delta,
        "previous_status": None if change is None else change.previous_status,
        "removed_by": [] if change is None else list(change.removed_by),
        "no_entry_passes": None if change is None else change.no_entry_passes,
    }


def _change(row: dict[str, Any]) -> Change:
    """The `Change` a group result row holds."""
    return Change(
        previous=row["previous"],
        selected=row["selected"],
        previous_cost=row["previous_cost"],
        cost=row["cost"],
        previous_status=row["previous_status"],
        removed_by=tuple(row["removed_by"]),
        no_entry_passes=row["no_entry_passes"],
    )


def _against_example(row: dict[str, Any]) -> dict[str, Any]:
    if row["error"] is not None:
        return {
            "decision_id": row["decision_id"],
            "position": row["position"],
            "error": row["error"],
        }
    return {
        "decision_id": row["decision_id"],
        "position": row["position"],
        "tenant": row["tenant"],
        "fingerprint": row["fingerprint"],
        "previous": row["previous"],
        "selected": row["selected"],
        "previous_cost": row["previous_cost"],
        "cost": row["cost"],
        "previous_status": row["previous_status"],
        "removed_by": list(row["removed_by"]),
    }


_AGAINST_COLUMNS = (
    "decision_id",
    "position",
    "recorded_at_us",
    "tenant",
    "fingerprint",
    "catalog_version",
    "target_version",
    "previous",
    "selected",
    "changed",
    "previous_cost",
    "cost",
    "cost_delta",
    "previous_status",
    "removed_by",
    "no_entry_passes",
    "error",
)


def _against_row(row: dict[str, Any], target: Catalog) -> dict[str, Any]:
    out = {name: row.get(name) for name in _AGAINST_COLUMNS}
    out["target_version"] = target.version
    out["removed_by"] = list(row["removed_by"])
    return out
