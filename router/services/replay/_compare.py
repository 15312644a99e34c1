"""The pure part of replay: what a recorded decision says, re-evaluated, compared field by field.

A `DecisionMade` payload is reduced to a `Recorded` key: everything the outcome depends on or
claims (policy, catalog version, evaluator version, features, tokens, outcome digest, passing
count, rank digest, selection, plan). Decisions with equal keys are verified or compared ONCE;
per decision only the id and the aggregates remain (see `_service`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from router.core import (
    EVALUATOR_VERSION,
    Catalog,
    Policy,
    RequestFeatures,
    Tokens,
    cost_of,
    decide,
    effective_tokens,
)
from router.services.decisions import decode_decision, encode_outcome, order_digest, outcome_digest

__all__ = [
    "FIELDS",
    "Change",
    "Evaluated",
    "Mismatch",
    "Recorded",
    "compare",
    "evaluate_once",
    "recorded_key",
    "verify",
]

FIELDS = (
    "policy",
    "catalog_version",
    "evaluator_version",
    "tokens",
    "filter.outcome",
    "filter.passing",
    "rank.order_sha256",
    "selected",
    "plan",
)
"""The recorded fields `--mode original` checks, in the order the first difference is taken."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """The outcome-relevant content of one `DecisionMade` payload (hashable: the group key)."""

    stream_id: str
    fingerprint: str
    policy_digest: str
    catalog_version: str
    evaluator_version: str
    features: tuple[int, int, int] | None
    tokens: tuple[int, int, int] | None
    outcome: str
    passing: int
    order_sha256: str
    selected: tuple[int, str] | None
    plan: tuple[int, ...]

    @property
    def request_features(self) -> RequestFeatures | None:
        """The recorded request features."""
        return None if self.features is None else RequestFeatures(*self.features)


def recorded_key(stream_id: str, payload: bytes) -> Recorded:
    """The group key of a `DecisionMade` payload (`RecordMismatchError` when it is malformed)."""
    decision = decode_decision(payload)
    features = decision.features
    tokens = decision.tokens
    return Recorded(
        stream_id,
        decision.fingerprint,
        decision.policy_digest,
        decision.catalog_version,
        decision.evaluator_version,
        None
        if features is None
        else (features.tokens_in, features.tokens_out, features.tokens_cached),
        None if tokens is None else (tokens.tokens_in, tokens.tokens_out, tokens.tokens_cached),
        decision.outcome,
        decision.passing,
        decision.order_sha256,
        decision.selected,
        decision.plan,
    )


@dataclass(frozen=True, slots=True, eq=False)
class Evaluated:
    """One evaluation of (policy, catalog, tokens), kept compact (no `Trace`: its per-rule index
    tuples are ~100 KB on a 2,500-entry catalog): the digests a record carries, the selection,
    the plan and, for `--against`, the filter outcome as `Trace.failures` holds it: per rule a
    bitmap (entry i = bit 7 - i % 8 of byte i // 8)."""

    catalog: Catalog
    tokens: Tokens | None
    outcome: str
    order_sha256: str
    passing: int
    selected: int | None
    plan: tuple[int, ...]
    rule_ids: tuple[str, ...]
    bits: npt.NDArray[np.uint8]

    def failed(self, row: int) -> npt.NDArray[np.intp]:
        """Indices of the entries failing rule number `row`."""
        return np.flatnonzero(np.unpackbits(self.bits[row], count=len(self.catalog.entries)))

    def removed_by(self, index: int) -> tuple[str, ...]:
        """The rules the entry at `index` fails."""
        column = (self.bits[:, index >> 3] >> (7 - (index & 7))) & 1
        return tuple(rule for rule, bit in zip(self.rule_ids, column.tolist(), strict=True) if bit)


def evaluate_once(
    policy: Policy,
    catalog: Catalog,
    tokens: Tokens | None,
    with_outcome: bool = True,
    digests: MutableMapping[tuple[str, tuple[str, ...], bytes], str] | None = None,
) -> Evaluated:
    """Evaluate with the evaluator (`decide`: no entry passing is an outcome, not an error).

    `digests` keeps outcome digests by (catalog version, rules, SHA-256 of the failure bitmaps)
    across calls: many evaluations of one catalog share their filter outcome (the token counts
    change the costs, rarely which entries fail), and its digest compresses the bitmaps at zlib
    level 9, a third of the cost of an evaluation."""
    features = (
        None
        if tokens is None
        else RequestFeatures(tokens.tokens_in, tokens.tokens_out, tokens.tokens_cached)
    )
    trace = decide(policy, catalog, features)
    # --mode original needs the outcome digest, --against the per-rule bitmaps: not both.
    outcome = ""
    if with_outcome:
        key = (catalog.version, trace.rule_ids, hashlib.sha256(b"".join(trace.failures)).digest())
        found = None if digests is None else digests.get(key)
        if found is None:
            found = outcome_digest(encode_outcome(trace))
            if digests is not None:
                digests[key] = found
        outcome = found
    width = 0 if with_outcome else (len(catalog.entries) + 7) // 8
    raw = b"" if with_outcome else b"".join(trace.failures)
    bits = np.frombuffer(raw, dtype=np.uint8).reshape(len(trace.rule_ids), width)
    return Evaluated(
        catalog=catalog,
        tokens=trace.tokens,
        outcome=outcome,
        order_sha256=order_digest(trace.ranked),
        passing=len(trace.ranked),
        selected=trace.selected,
        plan=trace.plan,
        rule_ids=trace.rule_ids,
        bits=bits,
    )


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The first recorded field a re-evaluation does not reproduce."""

    field: str
    recorded: str
    replayed: str

    def to_json(self) -> dict[str, str]:
        """JSON-able."""
        return {"field": self.field, "recorded": self.recorded, "replayed": self.replayed}


def _tokens_text(tokens: tuple[int, int, int] | Tokens | None) -> str:
    if tokens is None:
        return "none"
    counts = (
        (tokens.tokens_in, tokens.tokens_out, tokens.tokens_cached)
        if isinstance(tokens, Tokens)
        else tokens
    )
    cached = f", cached {counts[2]}" if counts[2] else ""
    return f"in {counts[0]}, out {counts[1]}{cached}"


def expected_tokens(policy: Policy, record: Recorded) -> Tokens | None:
    """The token counts the decision had to use: the policy's, else the request's."""
    return effective_tokens(policy, record.request_features)


def verify(record: Recorded, policy: Policy, evaluated: Evaluated) -> Mismatch | None:
    """Compare a record with the re-evaluation of its own policy and catalog version."""
    catalog = evaluated.catalog
    if record.evaluator_version != EVALUATOR_VERSION:
        return Mismatch("evaluator_version", record.evaluator_version, EVALUATOR_VERSION)
    tokens = expected_tokens(policy, record)
    recorded_tokens = None if record.tokens is None else Tokens(*record.tokens)
    if recorded_tokens != tokens:
        return Mismatch("tokens", _tokens_text(record.tokens), _tokens_text(tokens))
    if record.outcome != evaluated.outcome:
        return Mismatch("filter.outcome", record.outcome, evaluated.outcome)
    if record.passing != evaluated.passing:
        return Mismatch("filter.passing", str(record.passing), str(evaluated.passing))
    if record.order_sha256 != evaluated.order_sha256:
        return Mismatch("rank.order_sha256", record.order_sha256, evaluated.order_sha256)
    index = evaluated.selected
    selected = None if index is None else (index, catalog.entries[index].id)
    if record.selected != selected:
        return Mismatch("selected", _selected_text(record.selected), _selected_text(selected))
    if record.plan != evaluated.plan:
        return Mismatch("plan", _plan_text(record.plan), _plan_text(evaluated.plan))
    return None


def _selected_text(selected: tuple[int, str] | None) -> str:
    return "none" if selected is None else f"{selected[1]} (index {selected[0]})"


def _plan_text(plan: Sequence[int]) -> str:
    return "[" + ", ".join(str(i) for i in plan) + "]"


@dataclass(frozen=True, slots=True)
class Change:
    """What re-evaluating one group of decisions against another catalog (and/or policy) changes.

    `previous` / `selected` are entry ids (None: no entry passed); costs are USD per run (None
    without token counts or when nothing is selected); `previous_status` is "eligible", "removed"
    (see `removed_by`) or "absent" (not in the target catalog) or None when nothing was selected.
    """

    previous: str | None
    selected: str | None
    previous_cost: float | None
    cost: float | None
    previous_status: str | None
    removed_by: tuple[str, ...]
    no_entry_passes: bool

    @property
    def changed(self) -> bool:
        """Whether the selected entry changes."""
        return self.previous != self.selected

    @property
    def cost_delta(self) -> float | None:
        """New cost minus previous cost, when both are known."""
        if self.previous_cost is None or self.cost is None:
            return None
        return self.cost - self.previous_cost


def _cost(catalog: Catalog, index: int | None, tokens: Tokens | None) -> float | None:
    if index is None or tokens is None:
        return None
    value = cost_of(catalog.entries[index], tokens)
    return value if value is not None and math.isfinite(value) else None


def compare(record: Recorded, old_catalog: Catalog, new: Evaluated) -> Change:
    """The change of one group: previous selection (recorded) against the new evaluation."""
    catalog = new.catalog
    previous = None if record.selected is None else record.selected[1]
    old_tokens = None if record.tokens is None else Tokens(*record.tokens)
    previous_cost = _cost(
        old_catalog, None if record.selected is None else record.selected[0], old_tokens
    )
    selected = None if new.selected is None else catalog.entries[new.selected].id
    status: str | None = None
    removed_by: tuple[str, ...] = ()
    if previous is not None:
        if previous not in catalog:
            status = "absent"
        else:
            removed_by = new.removed_by(catalog.index_of(previous))
            status = "removed" if removed_by else "eligible"
    return Change(
        previous=previous,
        selected=selected,
        previous_cost=previous_cost,
        cost=_cost(catalog, new.selected, new.tokens),
        previous_status=status,
        removed_by=removed_by,
        no_entry_passes=new.selected is None,
    )
