"""Evaluating one group of decisions (`--mode original`: verify it; `--against`: what changes),
with what that needs loaded once and kept in bounded LRU caches: catalog versions, policies, the
evaluations of (policy, catalog, tokens), the recorded filter outcomes as bitmaps over the
target catalog, and the entry maps between two catalogs."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import numpy as np
import numpy.typing as npt

from ledger import EventRecord
from router.core import Catalog, MissingTokensError, Policy, Tokens, effective_tokens
from router.services.decisions import (
    DecisionError,
    DecisionService,
    RecordMismatchError,
    decode_failures,
    outcome_stream,
    tenant_stream,
)
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
from router.services.replay._report import ReplayReport, RuleImpact
from router.services.replay._scan import DecisionFilter, payload_fingerprint

__all__ = ["SEQUENCED", "Groups", "selected", "text_or_none"]

SEQUENCED = "decisions/"
"""Group key of a decision recorded in its own tenant's sequence (`tenant_stream`): decisions
of every tenant with the same outcome-relevant content share one group."""


def _home(stream_id: str, tenant: str) -> str:
    """The stream part of a decision's group key: `SEQUENCED` when the decision is in its
    tenant's sequence, else the stream itself (the policy's, in ledgers of release 0.1.0, which
    `_policy` checks)."""
    return SEQUENCED if stream_id == tenant_stream(tenant) else stream_id


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


class Groups:
    """Evaluates groups for one `ReplayService`; the caches outlive a run (each is bounded)."""

    def __init__(self, decisions: DecisionService, *, group_cache: int) -> None:
        self.decisions = decisions
        self.ledger = decisions.ledger
        self._evaluated = _Lru(group_cache)
        self._catalogs = _Lru(16)
        self._befores = _Lru(4096)
        self._index_maps = _Lru(16)
        self._digests = _Lru(4096)

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
        if record.stream_id not in (record.fingerprint, SEQUENCED):
            # In another tenant's sequence, or (0.1.0) in another policy's stream.
            field = "tenant" if record.stream_id.startswith(SEQUENCED) else "policy"
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

    async def _before(
        self, digest: str, old: Catalog, new: Evaluated
    ) -> tuple[npt.NDArray[np.uint8], list[tuple[str, ...]]]:
        """What the recorded outcome `digest` (over `old`) removed, per rule of `new` (a rule
        it does not name removed nothing): as bitmaps over `new`'s catalog (rules × bytes, an
        entry mapped by id), and the ids of the removed entries that catalog does not have.
        Kept per (outcome, target catalog, rules): the groups of one outcome share it."""
        key = (digest, old.version, new.catalog.version, new.rule_ids)
        found = self._befores.get(key)
        if found is None:
            events = await self.ledger.stream(outcome_stream(digest), 1, 1)
            failed: dict[str, bytes] = {}
            if events:  # absent: the rules' "before" is empty (every removal counts as new)
                outcome = events[0].payload_json()
                if int(outcome["entries"]) == len(old.entries):
                    failed = dict(zip(outcome["rules"], decode_failures(outcome), strict=True))
            count = len(old.entries)
            removed = np.zeros((len(new.rule_ids), count), dtype=bool)
            for row, rule in enumerate(new.rule_ids):
                if rule in failed:
                    bits = np.frombuffer(failed[rule], dtype=np.uint8)
                    removed[row] = np.unpackbits(bits, count=count).astype(bool)
            to_new = self._index_map(old, new.catalog)
            kept = to_new >= 0
            mapped = np.zeros((len(new.rule_ids), len(new.catalog.entries)), dtype=bool)
            mapped[:, to_new[kept]] = removed[:, kept]
            gone = [tuple(old.entries[i].id for i in np.flatnonzero(r & ~kept)) for r in removed]
            found = (np.packbits(mapped, axis=1), gone)
            self._befores.put(key, found)
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

    # -- original ----------------------------------------------------------------------------

    async def verify_group(
        self, stream_id: str, raw: bytes, report: ReplayReport
    ) -> tuple[Recorded | None, Mismatch | None]:
        """Verify one group, given the stream part of its key and one of its payloads."""
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

    async def verify_slow(
        self, event: EventRecord, report: ReplayReport
    ) -> tuple[str | None, Recorded | None, Mismatch | None]:
        """A payload without the usual layout: parsed fully, verified on its own (tenant,
        record, mismatch)."""
        try:
            payload = json.loads(event.payload)
            tenant = payload.get("tenant")
            decision_id = str(payload["decision_id"]).encode()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return None, None, Mismatch("payload", "a decision payload", f"unreadable: {exc!r}")
        if decision_id != _uuid_text(event.event_id):
            return tenant, None, _id_mismatch(decision_id, event.event_id)
        home = _home(event.stream_id, tenant) if isinstance(tenant, str) else event.stream_id
        record, mismatch = await self.verify_group(home, event.payload, report)
        return tenant, record, mismatch

    # -- against -----------------------------------------------------------------------------

    async def change_group(
        self,
        payload: bytes,
        target: Catalog,
        override: Policy | None,
        report: ReplayReport,
        seen_pairs: set[tuple[str, str, str]],
    ) -> tuple[Recorded | None, Change | None, str | None]:
        """What re-evaluating one group (given one of its payloads) against `target` (and
        `override` instead of its own policy) changes: (record, change, error). The rule impact
        of each (recorded outcome, policy, tokens) not in `seen_pairs` goes to
        `report.by_rule`."""
        report.groups += 1
        try:
            record = recorded_key(payload_fingerprint(payload), payload)
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

        The sets are compared as bitmaps over the target catalog (numpy, all rules at once), the
        recorded ones mapped there by id; an entry the target does not have is no longer
        removed. Only the differences become ids."""
        before, gone = await self._before(record.outcome, old_catalog, new)
        if not new.rule_ids:
            return
        added = new.bits & ~before
        dropped = before & ~new.bits
        size = len(new.catalog.entries)
        entries = new.catalog.entries
        changed: list[bool] = np.any(added | dropped, axis=1).tolist()
        for row, rule in enumerate(new.rule_ids):
            if not (changed[row] or gone[row]):
                continue
            impact = report.by_rule.get(rule)
            if impact is None:
                impact = report.by_rule[rule] = RuleImpact()
            for bits, into in ((added, impact.newly_removed), (dropped, impact.no_longer_removed)):
                into.update(
                    entries[i].id for i in np.flatnonzero(np.unpackbits(bits[row], count=size))
                )
            impact.no_longer_removed.update(gone[row])


def selected(flt: DecisionFilter, event: EventRecord) -> bool:
    """Whether a payload read one by one has the tenant and policy asked for (an unreadable
    one has neither)."""
    try:
        return flt.matches(event)
    except ValueError:
        return flt.tenant is None and flt.fingerprint is None


def text_or_none(value: Any) -> str | None:
    """`value` if it is a string."""
    return value if isinstance(value, str) else None


def _uuid_text(raw: bytes) -> bytes:
    """The canonical text of a UUID given as 16 bytes (what a payload's `decision_id` holds)."""
    h = bytes(raw).hex().encode()
    return b"-".join((h[:8], h[8:12], h[12:16], h[16:20], h[20:]))


def _id_mismatch(recorded: bytes, event_id: bytes) -> Mismatch:
    return Mismatch(
        "decision_id", recorded.decode("utf-8", "replace"), _uuid_text(event_id).decode()
    )
