"""Turning decision-record events into the rows of the exported datasets (pure: no I/O).

The exporter feeds it events read from the ledger; the bundle verifier feeds it the events the
bundle proves, and compares what it builds with the bundled Parquet data."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from reports._groups import CatalogRanks, Lru
from reports._schema import SCHEMAS
from router.core import (
    BUILTIN_RULES,
    COST_PER_RUN,
    STATUS_RULE,
    Catalog,
    Policy,
    Trace,
    cost_of,
)
from router.services.decisions import DecisionPayload, rebuild_trace

__all__ = [
    "CatalogInfo",
    "DecisionKey",
    "RowBuilder",
    "decision_key",
    "split_fingerprint",
    "utc_date",
]


_ARRAYS = {
    ("eliminations", "entry_index"),
    ("eliminations", "observed"),
    ("rankings", "entry_index"),
    ("rankings", "key_values"),
}
"""The catalog-long list columns: added per row as a numpy or Arrow array (`CatalogRanks`),
turned into Arrow list arrays by offsets, without a Python object per element."""

_EXAMPLES = 8192
"""(catalog, policy, rule, entry) explanations of one removed entry kept: groups that differ by
their tokens only share them (a few thousand per ledger)."""

_IMPLICIT_NEEDS = {STATUS_RULE: ('status = "active"', '["eq","status","active"]')}
"""The rules every policy applies before its own: what they need, in words and as JSON."""


def split_fingerprint(text: str) -> tuple[str, str | None]:
    """`"301140696-1054914287 (sigma-pol/v1)"` → (`"301140696-1054914287"`, `"sigma-pol/v1"`)."""
    head, sep, tail = text.partition(" (")
    if not sep or not tail.endswith(")"):
        return text, None
    return head, tail[:-1]


def utc_date(recorded_at_us: int) -> str:
    """The UTC date (YYYY-MM-DD) of a ledger timestamp: the `date` partition value."""
    return datetime.fromtimestamp(recorded_at_us / 1_000_000, tz=UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class CatalogInfo:
    """A catalog version with its entries' columns ready for lookups by index and by id."""

    catalog: Catalog
    published_at_us: int
    ids: tuple[str, ...]
    providers: tuple[str | None, ...]
    regions: tuple[str | None, ...]
    no_log: tuple[bool | None, ...]
    index: Mapping[str, int]

    @classmethod
    def of(cls, catalog: Catalog, published_at_us: int) -> CatalogInfo:
        """Precompute the columns of `catalog`."""

        def text(value: object) -> str | None:
            return value if isinstance(value, str) else None

        entries = catalog.entries
        return cls(
            catalog,
            published_at_us,
            tuple(e.id for e in entries),
            tuple(text(e.attributes.get("provider")) for e in entries),
            tuple(text(e.attributes.get("region")) for e in entries),
            tuple(
                v if isinstance(v := e.attributes.get("no_log"), bool) else None for e in entries
            ),
            {e.id: i for i, e in enumerate(entries)},
        )


@dataclass(frozen=True, slots=True)
class DecisionKey:
    """What an attempt needs of its decision: partition values and catalog."""

    tenant: str
    date: str
    catalog_version: str


def decision_key(payload: DecisionPayload, recorded_at_us: int) -> DecisionKey:
    """The `DecisionKey` of a decoded `DecisionMade` payload."""
    return DecisionKey(payload.tenant, utc_date(recorded_at_us), payload.catalog_version)


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass
class RowBuilder:
    """Accumulates rows per dataset; `take` hands them over as record batches.

    `catalogs`, `policies` (by digest) and `outcomes` (payloads by digest) must hold what the
    events added refer to; `missing` lists what does not, so the caller can fetch it first."""

    catalogs: dict[str, CatalogInfo] = field(default_factory=dict)
    policies: dict[str, tuple[Policy, int]] = field(default_factory=dict)
    outcomes: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    _columns: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    _emitted: set[tuple[Any, ...]] = field(default_factory=set)
    _ranks: CatalogRanks = field(default_factory=CatalogRanks)
    _examples: Lru = field(default_factory=lambda: Lru(_EXAMPLES))

    def written(self, keys: set[tuple[Any, ...]]) -> None:
        """Mark rows as written already (an appended export): ("c", catalog version),
        ("p", policy digest), ("e", outcome, policy digest) and ("g", *group)."""
        self._emitted |= keys

    def __post_init__(self) -> None:
        for name in SCHEMAS:
            self._reset(name)

    def _reset(self, name: str) -> None:
        self._columns[name] = {f.name: [] for f in SCHEMAS[name]}

    def _add(self, name: str, row: Mapping[str, Any]) -> None:
        columns = self._columns[name]
        for key, values in columns.items():
            values.append(row[key])

    def pending(self, name: str) -> int:
        """Rows of dataset `name` not yet taken."""
        return len(next(iter(self._columns[name].values())))

    def take(self, name: str) -> pa.RecordBatch | None:
        """The rows of `name` added since the last call, as one batch (None when there is none)."""
        columns = self._columns[name]
        if not next(iter(columns.values())):
            return None
        schema = SCHEMAS[name]
        arrays = [
            _list_column(columns[f.name])
            if (name, f.name) in _ARRAYS
            else pa.array(columns[f.name], type=f.type)
            for f in schema
        ]
        self._reset(name)
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def missing(self, payload: DecisionPayload) -> tuple[str | None, str | None, str | None]:
        """(catalog version, policy fingerprint, outcome digest) a decision refers to that this
        builder does not hold yet (None for each one it holds)."""
        version = payload.catalog_version
        outcome = payload.outcome
        return (
            None if version in self.catalogs else version,
            None if payload.policy_digest in self.policies else payload.fingerprint,
            None if outcome in self.outcomes else outcome,
        )

    def add_catalog(self, catalog: Catalog, published_at_us: int) -> None:
        """Hold a catalog version and add its rows to `catalogs`."""
        if catalog.version in self.catalogs:
            return
        info = CatalogInfo.of(catalog, published_at_us)
        self.catalogs[catalog.version] = info
        if ("c", catalog.version) in self._emitted:
            return
        for index, entry in enumerate(catalog.entries):
            attrs = entry.attributes
            window = attrs.get("context_window")
            status = attrs.get("status")
            model = attrs.get("model")
            self._add(
                "catalogs",
                {
                    "catalog_version": catalog.version,
                    "name": catalog.name,
                    "published_at": published_at_us,
                    "entry_index": index,
                    "entry_id": entry.id,
                    "model": model if isinstance(model, str) else None,
                    "provider": info.providers[index],
                    "region": info.regions[index],
                    "status": status if isinstance(status, str) else None,
                    "no_log": info.no_log[index],
                    "price_in": _num(attrs.get("price_in")),
                    "price_out": _num(attrs.get("price_out")),
                    "context_window": None if (w := _num(window)) is None else int(w),
                    "bench_intelligence": _num(attrs.get("bench_intelligence")),
                    "attributes": json.dumps(entry.to_json(), sort_keys=True),
                },
            )

    def add_policy(self, policy: Policy, recorded_at_us: int) -> None:
        """Hold a policy and add its row to `policies`."""
        if policy.digest in self.policies:
            return
        self.policies[policy.digest] = (policy, recorded_at_us)
        if ("p", policy.digest) in self._emitted:
            return
        fingerprint, ir_version = split_fingerprint(policy.fingerprint)
        implicit = [
            {"id": rule, "implicit": True, "needs": needs, "when": when}
            for rule in BUILTIN_RULES
            for needs, when in (_IMPLICIT_NEEDS[rule],)
        ]
        own = [
            {
                "id": rule.id,
                "implicit": False,
                "needs": rule.describe(),
                "when": json.dumps(rule.to_json()["when"], separators=(",", ":")),
            }
            for rule in policy.rules
        ]
        self._add(
            "policies",
            {
                "fingerprint": fingerprint,
                "ir_version": ir_version,
                "digest": policy.digest,
                "recorded_at": recorded_at_us,
                "rules": [rule.id for rule in policy.rules],
                "normalized_rules": implicit + own,
                "rank": [f"{k.attr} {k.direction}" for k in policy.rank],
                "max_attempts": policy.max_attempts,
                "document": json.dumps(policy.to_json(), sort_keys=True),
            },
        )

    def add_outcome(self, digest: str, payload: Mapping[str, Any]) -> None:
        """Hold an `OutcomeRecorded` payload (its rows are added on first use)."""
        self.outcomes[digest] = payload

    def add_decision(
        self,
        position: int,
        event_id: str,
        recorded_at_us: int,
        payload: DecisionPayload,
        sequence: int | None,
    ) -> None:
        """Add a `DecisionMade` event's row, and its group's rows the first time they are met
        (`sequence`: its version in its tenant's sequence, None when it is in none)."""
        tenant = payload.tenant
        version = payload.catalog_version
        info = self.catalogs[version]
        tokens = payload.tokens
        index = None if payload.selected is None else payload.selected[0]
        cost = None
        if index is not None and tokens is not None:
            entry = info.catalog.entries[index]
            # None for an entry whose price is unknown; tiers and cached input apply.
            cost = cost_of(entry, tokens)
        fingerprint, ir_version = split_fingerprint(payload.fingerprint)
        self._add(
            "decisions",
            {
                "decision_id": event_id,
                "position": position,
                "sequence": sequence,
                "recorded_at": recorded_at_us,
                "preview": payload.preview,
                "policy_fingerprint": fingerprint,
                "policy_ir_version": ir_version,
                "policy_digest": payload.policy_digest,
                "catalog_version": version,
                "evaluator_version": payload.evaluator_version,
                "request_digest": payload.request_digest,
                "tokens_in": None if tokens is None else tokens.tokens_in,
                "tokens_out": None if tokens is None else tokens.tokens_out,
                "outcome_digest": payload.outcome,
                "order_digest": payload.order_sha256,
                "passing": payload.passing,
                "selected_index": index,
                "selected_id": None if index is None else info.ids[index],
                "selected_provider": None if index is None else info.providers[index],
                "selected_region": None if index is None else info.regions[index],
                "selected_no_log": None if index is None else info.no_log[index],
                "selected_cost_usd": cost,
                "plan": [info.ids[i] for i in payload.plan],
                "date": utc_date(recorded_at_us),
                "tenant": tenant,
            },
        )
        self.add_group(payload)

    def add_group(self, payload: DecisionPayload) -> None:
        """Add the rows of a decision's group (outcome, rank order, policy, token counts) unless
        they are there already: its outcome's eliminations (once per outcome and policy), its
        ranking with the rank-key values, and its explanation (as `ledger show` prints it)."""
        tokens = payload.tokens
        counts = (None, None) if tokens is None else (tokens.tokens_in, tokens.tokens_out)
        group = ("g", payload.outcome, payload.order_sha256, payload.policy_digest, *counts)
        if group in self._emitted:
            return
        self._emitted.add(group)
        policy, _ = self.policies[payload.policy_digest]
        info = self.catalogs[payload.catalog_version]
        catalog = info.catalog
        # Checks the outcome and the order against their digests, and the plan against the order.
        trace = rebuild_trace(
            payload, self.outcomes[payload.outcome], policy, catalog, self._ranks.rank
        )
        size = len(catalog.entries)
        failed = [
            (rule, np.flatnonzero(np.unpackbits(np.frombuffer(bitmap, np.uint8), count=size)))
            for rule, bitmap in zip(trace.rule_ids, trace.failures, strict=True)
        ]
        key = ("e", payload.outcome, payload.policy_digest)
        if key not in self._emitted:
            self._emitted.add(key)
            for rule_index, (rule, removed) in enumerate(failed):
                if len(removed):
                    self._add(
                        "eliminations",
                        {
                            "outcome_digest": payload.outcome,
                            "policy_digest": payload.policy_digest,
                            "catalog_version": catalog.version,
                            "rule": rule,
                            "rule_index": rule_index,
                            "needs": self._example(trace, rule, int(removed[0]))[0],
                            "removed": len(removed),
                            "entry_index": removed.astype(np.int32),
                            "observed": self._observed(trace, rule, removed),
                        },
                    )
        common = {
            "outcome_digest": payload.outcome,
            "order_digest": payload.order_sha256,
            "policy_digest": payload.policy_digest,
            "catalog_version": catalog.version,
            "tokens_in": counts[0],
            "tokens_out": counts[1],
        }
        ranked = np.array(trace.ranked, dtype=np.int64)
        table = self._ranks.table(catalog, policy.rank, tokens)
        self._add(
            "rankings",
            {
                **common,
                "rank_keys": [f"{k.attr} {k.direction}" for k in policy.rank],
                "entry_index": ranked.astype(np.int32),
                # Trace.sort_keys of each ranked entry, from the catalog-wide table.
                "key_values": table.values[ranked],
            },
        )
        removals = []
        for rule_index, (rule, removed) in enumerate(failed):
            if len(removed):
                needs, example = self._example(trace, rule, int(removed[0]))
                removals.append(
                    {
                        "rule": rule,
                        "rule_index": rule_index,
                        "removed": len(removed),
                        "needs": needs,
                        "example_entry": info.ids[removed[0]],
                        "example": example,
                    }
                )
        selected = None if trace.selected is None else info.ids[trace.selected]
        self._add(
            "explanations",
            {
                **common,
                "selected_id": selected,
                "why_selected": trace.why_selected(),
                "removals": removals,
            },
        )

    def _observed(self, trace: Trace, rule: str, removed: npt.NDArray[np.int64]) -> pa.Array:
        """What `rule` saw of each removed entry (`Failure.seen`)."""
        return self._ranks.seen(trace.catalog, _attributes(trace, rule), trace.tokens, removed)

    def _example(self, trace: Trace, rule: str, entry: int) -> tuple[str, str]:
        """(needs, text) of `trace.failure(entry, rule)`. Only a `cost_per_run` the rule reads
        depends on the group's tokens: the others are kept per (catalog, policy, rule, entry)."""
        if COST_PER_RUN in _attributes(trace, rule):
            failure = trace.failure(entry, rule)
            return failure.needs, str(failure)
        key = (trace.catalog.version, trace.policy.digest, rule, entry)
        found: tuple[str, str] | None = self._examples.get(key)
        if found is None:
            failure = trace.failure(entry, rule)
            found = self._examples.put(key, (failure.needs, str(failure)))
        return found

    def add_attempt(
        self, position: int, recorded_at_us: int, payload: Mapping[str, Any], key: DecisionKey
    ) -> None:
        """Add an `AttemptFinished` event's row (partitioned like its decision)."""
        info = self.catalogs[key.catalog_version]
        index = info.index.get(payload["entry"])
        usage = payload.get("usage")
        self._add(
            "attempts",
            {
                "decision_id": payload["decision_id"],
                "attempt": payload["attempt"],
                "position": position,
                "recorded_at": recorded_at_us,
                "entry_id": payload["entry"],
                "provider": None if index is None else info.providers[index],
                "region": None if index is None else info.regions[index],
                "no_log": None if index is None else info.no_log[index],
                "status": payload["status"],
                "error_class": payload.get("error_class"),
                "http_status": payload.get("http_status"),
                "latency_ms": float(payload["latency_ms"]),
                "tokens_in": None if usage is None else usage["in"],
                "tokens_out": None if usage is None else usage["out"],
                "cost_usd": payload.get("cost_usd"),
                "date": key.date,
                "tenant": key.tenant,
            },
        )


def _attributes(trace: Trace, rule: str) -> Sequence[str]:
    """The attributes `rule` reads."""
    if rule == STATUS_RULE:
        return ("status",)
    return trace.policy.rules[trace.policy.rule_index(rule)].attributes()


def _list_column(values: list[Any]) -> pa.Array:
    """A list column from per-row arrays: 1-D numpy or Arrow arrays (a list of values per row),
    or 2-D numpy arrays (a list of lists per row: one inner list per array row, NaN = null)."""
    lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    if values and isinstance(values[0], pa.Array):
        return pa.ListArray.from_arrays(offsets, pa.concat_arrays(values))
    if values and values[0].ndim == 2:
        widths = np.repeat([v.shape[1] for v in values], lengths)
        flat = np.concatenate([v.ravel() for v in values])
        inner = pa.ListArray.from_arrays(
            pa.array(np.concatenate([[0], np.cumsum(widths)]).astype(np.int32)),
            pa.array(flat, mask=np.isnan(flat)),
        )
        return pa.ListArray.from_arrays(offsets, inner)
    flat = np.concatenate(values) if values else np.zeros(0, np.int32)
    return pa.ListArray.from_arrays(offsets, pa.array(flat))
