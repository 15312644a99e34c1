"""Turning decision-record events into the rows of the exported datasets (pure: no I/O).

The exporter feeds it events read from the ledger; the bundle verifier feeds it the events the
bundle proves, and compares what it builds with the bundled Parquet data."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from reports._errors import ReportsError
from reports._schema import SCHEMAS
from router.core import Catalog, Policy, cost_of
from router.services.decisions import DecisionPayload, decode_failures, order_digest, rank_order

__all__ = ["CatalogInfo", "DecisionKey", "RowBuilder", "decision_key", "utc_date"]


_DECODED = 64
"""Outcomes whose decoded removals are kept."""


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
    _emitted: set[tuple[str, ...]] = field(default_factory=set)
    _failures: OrderedDict[str, tuple[tuple[int, ...], ...]] = field(default_factory=OrderedDict)

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
        arrays = [pa.array(columns[f.name], type=f.type) for f in schema]
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
        self._add(
            "policies",
            {
                "fingerprint": policy.fingerprint,
                "digest": policy.digest,
                "recorded_at": recorded_at_us,
                "rules": [rule.id for rule in policy.rules],
                "max_attempts": policy.max_attempts,
                "document": json.dumps(policy.to_json(), sort_keys=True),
            },
        )

    def add_outcome(self, digest: str, payload: Mapping[str, Any]) -> None:
        """Hold an `OutcomeRecorded` payload (its rows are added per tenant on first use)."""
        self.outcomes[digest] = payload

    def _failures_of(self, digest: str) -> tuple[tuple[int, ...], ...]:
        found = self._failures.get(digest)
        if found is None:
            entries = int(self.outcomes[digest]["entries"])
            found = tuple(
                tuple(
                    np.flatnonzero(
                        np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), count=entries)
                    ).tolist()
                )
                for bitmap in decode_failures(self.outcomes[digest])
            )
            self._failures[digest] = found
            # Decoded removals are large (entry indexes per rule) and each is used by a few
            # tenants and orders in a row: keep the recent ones only, so memory stays bounded.
            if len(self._failures) > _DECODED:
                self._failures.popitem(last=False)
        return found

    def add_decision(
        self, position: int, event_id: str, recorded_at_us: int, payload: DecisionPayload
    ) -> None:
        """Add a `DecisionMade` event's row, and its outcome's eliminations and its rank order
        the first time the tenant meets them."""
        tenant = payload.tenant
        version = payload.catalog_version
        info = self.catalogs[version]
        outcome = payload.outcome
        order = payload.order_sha256
        tokens = payload.tokens
        index = None if payload.selected is None else payload.selected[0]
        cost = None
        if index is not None and tokens is not None:
            entry = info.catalog.entries[index]
            # None for an entry whose price is unknown; tiers and cached input apply.
            cost = cost_of(entry, tokens)
        self._add(
            "decisions",
            {
                "decision_id": event_id,
                "position": position,
                "recorded_at": recorded_at_us,
                "preview": payload.preview,
                "policy_fingerprint": payload.fingerprint,
                "policy_digest": payload.policy_digest,
                "catalog_version": version,
                "evaluator_version": payload.evaluator_version,
                "request_digest": payload.request_digest,
                "tokens_in": None if tokens is None else tokens.tokens_in,
                "tokens_out": None if tokens is None else tokens.tokens_out,
                "outcome_digest": outcome,
                "order_digest": order,
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
        self.add_outcome_rows(tenant, outcome, order, payload)

    def add_outcome_rows(
        self, tenant: str, outcome: str, order: str, payload: DecisionPayload
    ) -> None:
        """Add the eliminations of `outcome` and the rank order `order` for `tenant` unless
        they are there already; `payload` is one decision (of that tenant) with them."""
        if ("r", tenant, outcome, order) in self._emitted:
            return
        info = self.catalogs[payload.catalog_version]
        if ("e", tenant, outcome) not in self._emitted:
            self._emitted.add(("e", tenant, outcome))
            self._eliminations(tenant, outcome, info)
        self._emitted.add(("r", tenant, outcome, order))
        self._rankings(tenant, outcome, order, payload, info)

    def _eliminations(self, tenant: str, digest: str, info: CatalogInfo) -> None:
        rules = self.outcomes[digest]["rules"]
        columns = self._columns["eliminations"]
        for rule_index, failed in enumerate(self._failures_of(digest)):
            count = len(failed)
            columns["outcome_digest"].extend([digest] * count)
            columns["catalog_version"].extend([info.catalog.version] * count)
            columns["rule"].extend([rules[rule_index]] * count)
            columns["rule_index"].extend([rule_index] * count)
            columns["entry_index"].extend(failed)
            columns["entry_id"].extend([info.ids[i] for i in failed])
            columns["provider"].extend([info.providers[i] for i in failed])
            columns["region"].extend([info.regions[i] for i in failed])
            columns["tenant"].extend([tenant] * count)

    def _rankings(
        self,
        tenant: str,
        outcome: str,
        order: str,
        payload: DecisionPayload,
        info: CatalogInfo,
    ) -> None:
        policy, _ = self.policies[payload.policy_digest]
        removed: set[int] = set()
        for failed in self._failures_of(outcome):
            removed.update(failed)
        passing = [i for i in range(len(info.ids)) if i not in removed]
        ranked = rank_order(policy, info.catalog, payload.tokens, passing)
        if order_digest(ranked) != order:
            raise ReportsError(
                f"decision {payload.decision_id}: the rank order rebuilt from outcome "
                f"{outcome} does not hash to the recorded order digest {order}"
            )
        for rank, entry in enumerate(ranked, start=1):
            self._add(
                "rankings",
                {
                    "outcome_digest": outcome,
                    "order_digest": order,
                    "catalog_version": info.catalog.version,
                    "rank": rank,
                    "entry_index": entry,
                    "entry_id": info.ids[entry],
                    "provider": info.providers[entry],
                    "region": info.regions[entry],
                    "tenant": tenant,
                },
            )

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
