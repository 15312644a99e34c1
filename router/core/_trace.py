"""The trace of one decision: compact, index-based data, and the words rendered from it on demand.

Data: the evaluator version, the policy, the catalog version, the token counts used, the rule ids
(built-in rules first, then the policy's rules in normalized order), per rule a bitmap of the
entries that did not pass it (`failure_bitmap`), the ranked passing entries and the plan (the
decision record stores it compactly, docs/decisions.md).
Entries are indices into `catalog.entries`. Everything else (observed values, sort keys, "why the
winner won") is derived from that data plus the policy and the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from router.core._catalog import COST_PER_RUN, AttrValue, Catalog, CatalogEntry
from router.core._columns import BoolArray
from router.core._expr import AllOf, AnyOf, Cmp, Eq, Expr, Has, In, Is, Not, render, show_value
from router.core._features import RequestFeatures
from router.core._policy import Policy, Rule, Tokens
from router.core._pricing import BASE_TIER_LABEL, TIER_PRICES, run_cost, tier_for

EVALUATOR_VERSION = "unhardcoded-eval/1"
"""Names the evaluation semantics; part of every trace. Bumped whenever a decision could change."""

STATUS_RULE = "catalog.status"
"""Built-in rule: only entries whose `status` is `"active"` are routable."""

BUILTIN_RULES: tuple[str, ...] = (STATUS_RULE,)
"""Rules every decision applies before the policy's own, in trace order."""

Truth = Literal["true", "false", "unknown"]

_CMP = {
    "eq": float.__eq__,
    "ne": float.__ne__,
    "lt": float.__lt__,
    "le": float.__le__,
    "gt": float.__gt__,
    "ge": float.__ge__,
}


def cost_of(entry: CatalogEntry, tokens: Tokens) -> float | None:
    """`cost_per_run` of one entry in USD, None when its price is unknown: (in × price_in +
    out × price_out) / 1e6 with the tier and cached-input price that apply (`_pricing.run_cost`)."""
    return run_cost(
        entry.attributes, entry.tiers, tokens.tokens_in, tokens.tokens_out, tokens.tokens_cached
    )


def pricing_of(entry: CatalogEntry, tokens: Tokens) -> dict[str, Any] | None:
    """How the entry's `cost_per_run` was priced for these tokens — the tier used and the prices
    it applied — for entries with tiers, a cached-input price or a `price_source`; else None."""
    attrs = entry.attributes
    if not entry.tiers and "price_cached_in" not in attrs and "price_source" not in attrs:
        return None
    out: dict[str, Any] = {"price_source": attrs.get("price_source", "priced")}
    if "price_in" not in attrs:
        out["tier"] = None
        out["note"] = "the price is unknown: cost rules are unknown, cost ranks it last"
        return out
    tier = tier_for(entry.tiers, tokens.tokens_in) if entry.tiers else None
    out["tier"] = BASE_TIER_LABEL if tier is None else tier.label()
    prices = {name: attrs.get(name) for name in TIER_PRICES if name in attrs}
    if tier is not None:
        prices.update({k: v for k, v in tier.to_json().items() if k != "above_tokens_in"})
    out["prices"] = prices
    if tokens.tokens_cached:
        out["tokens_cached"] = min(tokens.tokens_cached, tokens.tokens_in)
    return out


def _value(entry: CatalogEntry, attr: str, tokens: Tokens | None) -> AttrValue | None:
    if attr == COST_PER_RUN:
        return None if tokens is None else cost_of(entry, tokens)
    return entry.attributes.get(attr)


def truth(expr: Expr, entry: CatalogEntry, tokens: Tokens | None) -> Truth:
    """Three-valued value of an expression on one entry (used to explain, not to decide)."""
    match expr:
        case AllOf(operands):
            results = [truth(e, entry, tokens) for e in operands]
            if "false" in results:
                return "false"
            return "unknown" if "unknown" in results else "true"
        case AnyOf(operands):
            results = [truth(e, entry, tokens) for e in operands]
            if "true" in results:
                return "true"
            return "unknown" if "unknown" in results else "false"
        case Not(operand):
            inner = truth(operand, entry, tokens)
            return "unknown" if inner == "unknown" else ("false" if inner == "true" else "true")
        case _:
            value = _value(entry, expr.attr, tokens)
            if value is None:
                return "unknown"
            match expr:
                case Is():
                    ok = value is True if isinstance(value, bool) else None
                case Cmp(_, op, x):
                    is_num = isinstance(value, int | float) and not isinstance(value, bool)
                    ok = _CMP[op](float(value), float(x)) if is_num else None  # type: ignore[arg-type]
                case Eq(_, x):
                    ok = value == x if isinstance(value, str) else None
                case In(_, xs):
                    ok = value in xs if isinstance(value, str) else None
                case Has(_, x):
                    ok = x in value if isinstance(value, tuple) else None
            if ok is None:
                return "unknown"
            return "true" if ok else "false"


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one entry did not pass one rule: the rule's outcome (false or unknown), the values it
    read (None = missing) and what it needs."""

    rule_id: str
    outcome: Truth
    observed: Mapping[str, AttrValue | None]
    needs: str

    def seen(self) -> str:
        """The values the rule read, e.g. `region = "us"` (`attr missing` when absent)."""
        return ", ".join(
            f"{attr} missing" if value is None else f"{attr} = {show_value(value)}"
            for attr, value in self.observed.items()
        )

    def __str__(self) -> str:
        return f"{self.rule_id} ({self.seen()}, needs {self.needs})"

    def to_json(self) -> dict[str, Any]:
        """The failure as JSON (observed values: null = missing)."""
        return {
            "rule": self.rule_id,
            "outcome": self.outcome,
            "observed": {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.observed.items()
            },
            "needs": self.needs,
            "text": str(self),
        }


@dataclass(frozen=True, slots=True, eq=False)
class Trace:
    """The outcome of one decision (see the module docstring); `selected` is None when no entry
    passed."""

    evaluator_version: str
    policy: Policy
    catalog: Catalog
    features: RequestFeatures | None
    tokens: Tokens | None
    rule_ids: tuple[str, ...]
    failures: tuple[bytes, ...]
    ranked: tuple[int, ...]
    plan: tuple[int, ...]

    @property
    def selected(self) -> int | None:
        """Index of the selected entry (the first of the plan), or None."""
        return self.ranked[0] if self.ranked else None

    def entry(self, index: int) -> CatalogEntry:
        """The catalog entry at an index."""
        return self.catalog.entries[index]

    def failed_entries(self, rule_id: str) -> tuple[int, ...]:
        """Indices of the entries that did not pass the rule, ascending."""
        bitmap = self.failures[self.rule_ids.index(rule_id)]
        return _indices(bitmap, len(self.catalog.entries))

    def removed(self) -> dict[int, tuple[str, ...]]:
        """Every removed entry (by index, ascending) → the ids of all the rules it failed."""
        size = len(self.catalog.entries)
        out: dict[int, list[str]] = {}
        for rule_id, bitmap in zip(self.rule_ids, self.failures, strict=True):
            for index in _indices(bitmap, size):
                out.setdefault(index, []).append(rule_id)
        return {index: tuple(out[index]) for index in sorted(out)}

    def failure(self, index: int, rule_id: str) -> Failure:
        """Why the entry at `index` did not pass rule `rule_id` (observed values, what it needs)."""
        entry = self.entry(index)
        if rule_id == STATUS_RULE:
            status = entry.attributes.get("status")
            outcome: Truth = "unknown" if not isinstance(status, str) else "false"
            return Failure(rule_id, outcome, {"status": status}, '"active"')
        rule = self.policy.rules[self.policy.rule_index(rule_id)]
        attrs, needs = _words(rule)
        observed = {attr: _value(entry, attr, self.tokens) for attr in attrs}
        if self.tokens is not None and COST_PER_RUN in observed and observed[COST_PER_RUN] is None:
            # The reason a cost is missing: the entry's price is unknown.
            observed["price_source"] = entry.attributes.get("price_source")
        return Failure(rule_id, truth(rule.when, entry, self.tokens), observed, needs)

    def failures_of(self, index: int) -> tuple[Failure, ...]:
        """Every rule the entry at `index` failed, with the observed values."""
        return tuple(
            self.failure(index, rule_id)
            for rule_id, bitmap in zip(self.rule_ids, self.failures, strict=True)
            if bitmap[index >> 3] >> (7 - (index & 7)) & 1
        )

    def explain_removal(self, index: int) -> str:
        """E.g. `removed by residency.eu (region = "us", needs region = "eu")`."""
        return _removal_text(self.failures_of(index))

    def sort_keys(self, index: int) -> tuple[float | None, ...]:
        """The entry's value for each rank key (None = missing or not a number: ranked last)."""
        entry = self.entry(index)
        keys: list[float | None] = []
        for key in self.policy.rank:
            value = _value(entry, key.attr, self.tokens)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            keys.append(float(value) if numeric else None)  # type: ignore[arg-type]
        return tuple(keys)

    def why_selected(self) -> str:
        """Why the winner won: its sort keys against the runner-up's."""
        if self.selected is None:
            return "no entry passed every rule"
        winner = self.entry(self.selected).id
        if len(self.ranked) == 1:
            return f"{winner} is the only entry that passed every rule"
        runner = self.ranked[1]
        mine, theirs = self.sort_keys(self.selected), self.sort_keys(runner)
        runner_id = self.entry(runner).id
        for key, a, b in zip(self.policy.rank, mine, theirs, strict=True):
            if a == b:
                continue
            relation = "<" if (a is not None and (b is None or a < b)) else ">"
            shown_b = "missing" if b is None else show_value(b)
            if key.attr == COST_PER_RUN:
                shown_b += self._cost_note(runner)
            return (
                f"{winner} wins on {key.attr} ({key.direction}): {show_value(a)}"
                f"{self._cost_note(self.selected) if key.attr == COST_PER_RUN else ''} "
                f"{relation} {shown_b} of runner-up {runner_id}"
            )
        return (
            f"{winner} ties runner-up {runner_id} on every rank key; the tie is broken by entry id "
            f"({show_value(winner)} < {show_value(runner_id)})"
        )

    def _cost_note(self, index: int) -> str:
        """` (price unknown)` or ` (above 200,000 input tokens)` when it explains a cost."""
        pricing = self.pricing(index)
        if pricing is None:
            return ""
        if pricing["tier"] is None:
            return " (price unknown)"
        return "" if pricing["tier"] == BASE_TIER_LABEL else f" ({pricing['tier']})"

    def summary(self) -> str:
        """One line: the selection, or why nothing passed (each rule and how many it removed)."""
        counts = ", ".join(
            f"{rule_id}: {count}"
            for rule_id, bitmap in zip(self.rule_ids, self.failures, strict=True)
            if (count := int.from_bytes(bitmap, "big").bit_count())
        )
        if self.selected is None:
            return (
                f"no catalog entry passes policy {self.policy.fingerprint}: all "
                f"{len(self.catalog.entries)} entries removed ({counts})"
            )
        return (
            f"selected {self.entry(self.selected).id} from {len(self.ranked)} passing of "
            f"{len(self.catalog.entries)} entries"
        )

    def pricing(self, index: int) -> dict[str, Any] | None:
        """How the entry's `cost_per_run` was priced (`pricing_of`): None without token counts or
        when the entry has neither tiers, a cached-input price nor a `price_source`."""
        return None if self.tokens is None else pricing_of(self.entry(index), self.tokens)

    def _ranked_json(self, index: int) -> dict[str, Any]:
        keys = self.sort_keys(index)
        out: dict[str, Any] = {
            "id": self.entry(index).id,
            "index": index,
            "keys": {key.attr: value for key, value in zip(self.policy.rank, keys, strict=True)},
        }
        pricing = self.pricing(index)
        if pricing is not None:
            out["pricing"] = pricing
        return out

    def to_json(self) -> dict[str, Any]:
        """The full human-readable trace: data and words (`fingerprint`, `catalog_version`,
        `selected`, `ranked`, `removed`, `plan`, …)."""
        return {
            "evaluator_version": self.evaluator_version,
            "fingerprint": self.policy.fingerprint,
            "policy_digest": self.policy.digest,
            "catalog_version": self.catalog.version,
            "catalog_name": self.catalog.name,
            "features": None if self.features is None else self.features.to_json(),
            "tokens": tokens_json(self.tokens),
            "rules": list(self.rule_ids),
            "selected": None if self.selected is None else self._ranked_json(self.selected),
            "why_selected": self.why_selected(),
            "plan": [self.entry(index).id for index in self.plan],
            "ranked": [self._ranked_json(index) for index in self.ranked],
            "removed": [self._removed_json(index) for index in self.removed()],
        }

    def _removed_json(self, index: int) -> dict[str, Any]:
        failures = self.failures_of(index)
        return {
            "id": self.entry(index).id,
            "index": index,
            "failed": [f.to_json() for f in failures],
            "text": _removal_text(failures),
        }


def tokens_json(tokens: Tokens | None) -> dict[str, int] | None:
    """`{"in", "out"}`, plus `cached` only when some input is cached (the form traces always had
    for requests without cached tokens)."""
    if tokens is None:
        return None
    out = {"in": tokens.tokens_in, "out": tokens.tokens_out}
    if tokens.tokens_cached:
        out["cached"] = tokens.tokens_cached
    return out


@lru_cache(maxsize=1024)
def _words(rule: Rule) -> tuple[tuple[str, ...], str]:
    return rule.attributes(), render(rule.when)


def _removal_text(failures: tuple[Failure, ...]) -> str:
    return "removed by " + "; ".join(str(f) for f in failures)


def failure_bitmap(failed: BoolArray) -> bytes:
    """Pack a per-entry mask: entry i is bit 7 - i % 8 of byte i // 8 (numpy's `packbits`)."""
    return np.packbits(failed).tobytes()


def _indices(bitmap: bytes, size: int) -> tuple[int, ...]:
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), count=size)
    return tuple(np.flatnonzero(bits).tolist())
