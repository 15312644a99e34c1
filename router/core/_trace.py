"""The trace of one decision: compact, index-based data, and the words rendered from it on demand.

Data (what the ledger stores): the evaluator version, the policy digest, the catalog version, the
token counts used, the rule ids (built-in rules first, then the policy's rules in normalized order),
per rule the indices of the entries that did not pass it, the ranked passing entries and the plan.
Entries are indices into `catalog.entries`. Everything else (observed values, sort keys, "why the
winner won") is derived from that data plus the policy and the catalog.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from router.core._catalog import COST_PER_RUN, AttrValue, Catalog, CatalogEntry
from router.core._errors import RouterError
from router.core._expr import AllOf, AnyOf, Cmp, Eq, Expr, Has, In, Is, Not, render, show_value
from router.core._features import RequestFeatures
from router.core._policy import Policy, Tokens

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


def cost_of(entry: CatalogEntry, tokens: Tokens) -> float:
    """`cost_per_run` of one entry in USD: (in × price_in + out × price_out) / 1e6."""
    price_in = float(entry.attributes["price_in"])  # type: ignore[arg-type]
    price_out = float(entry.attributes["price_out"])  # type: ignore[arg-type]
    return (tokens.tokens_in * price_in + tokens.tokens_out * price_out) / 1e6


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

    def __str__(self) -> str:
        seen = ", ".join(
            f"{attr} missing" if value is None else f"{attr} = {show_value(value)}"
            for attr, value in self.observed.items()
        )
        return f"{self.rule_id} ({seen}, needs {self.needs})"

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
    failures: tuple[tuple[int, ...], ...]
    ranked: tuple[int, ...]
    plan: tuple[int, ...]

    @property
    def selected(self) -> int | None:
        """Index of the selected entry (the first of the plan), or None."""
        return self.ranked[0] if self.ranked else None

    def entry(self, index: int) -> CatalogEntry:
        """The catalog entry at an index."""
        return self.catalog.entries[index]

    def removed(self) -> dict[int, tuple[str, ...]]:
        """Every removed entry (by index, ascending) → the ids of all the rules it failed."""
        out: dict[int, list[str]] = {}
        for rule_id, indices in zip(self.rule_ids, self.failures, strict=True):
            for index in indices:
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
        observed = {attr: _value(entry, attr, self.tokens) for attr in rule.attributes()}
        needs = render(rule.when)
        return Failure(rule_id, truth(rule.when, entry, self.tokens), observed, needs)

    def failures_of(self, index: int) -> tuple[Failure, ...]:
        """Every rule the entry at `index` failed, with the observed values."""
        return tuple(
            self.failure(index, rule_id)
            for rule_id, indices in zip(self.rule_ids, self.failures, strict=True)
            if _contains(indices, index)
        )

    def explain_removal(self, index: int) -> str:
        """E.g. `removed by residency.eu (region = "us", needs region = "eu")`."""
        return "removed by " + "; ".join(str(f) for f in self.failures_of(index))

    def sort_keys(self, index: int) -> tuple[float | None, ...]:
        """The entry's value for each rank key (None = missing, ranked last)."""
        entry = self.entry(index)
        keys: list[float | None] = []
        for key in self.policy.rank:
            value = _value(entry, key.attr, self.tokens)
            keys.append(None if value is None else float(value))  # type: ignore[arg-type]
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
            return (
                f"{winner} wins on {key.attr} ({key.direction}): {show_value(a)} {relation} "
                f"{shown_b} of runner-up {runner_id}"
            )
        return (
            f"{winner} ties runner-up {runner_id} on every rank key; the tie is broken by entry id "
            f"({show_value(winner)} < {show_value(runner_id)})"
        )

    def summary(self) -> str:
        """One line: the selection, or why nothing passed (each rule and how many it removed)."""
        counts = ", ".join(
            f"{rule_id}: {len(indices)}"
            for rule_id, indices in zip(self.rule_ids, self.failures, strict=True)
            if indices
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

    def compact(self) -> dict[str, Any]:
        """The trace as compact JSON (entries and rules by index); `from_compact` rebuilds it."""
        return {
            "evaluator_version": self.evaluator_version,
            "policy_digest": self.policy.digest,
            "catalog_version": self.catalog.version,
            "features": None if self.features is None else self.features.to_json(),
            "tokens": None
            if self.tokens is None
            else {"in": self.tokens.tokens_in, "out": self.tokens.tokens_out},
            "rule_ids": list(self.rule_ids),
            "failures": [list(indices) for indices in self.failures],
            "ranked": list(self.ranked),
            "plan": list(self.plan),
        }

    @classmethod
    def from_compact(cls, data: Mapping[str, Any], policy: Policy, catalog: Catalog) -> Trace:
        """Rebuild a trace from `compact()` data and the policy and catalog it names."""
        if data["policy_digest"] != policy.digest or data["catalog_version"] != catalog.version:
            raise TraceMismatchError(
                "the compact trace names another policy or catalog version than the ones given"
            )
        features = data.get("features")
        tokens = data.get("tokens")
        return cls(
            evaluator_version=str(data["evaluator_version"]),
            policy=policy,
            catalog=catalog,
            features=None if features is None else RequestFeatures(**features),
            tokens=None if tokens is None else Tokens(tokens["in"], tokens["out"]),
            rule_ids=tuple(data["rule_ids"]),
            failures=tuple(tuple(indices) for indices in data["failures"]),
            ranked=tuple(data["ranked"]),
            plan=tuple(data["plan"]),
        )

    def _ranked_json(self, index: int) -> dict[str, Any]:
        keys = self.sort_keys(index)
        return {
            "id": self.entry(index).id,
            "index": index,
            "keys": {key.attr: value for key, value in zip(self.policy.rank, keys, strict=True)},
        }

    def to_json(self) -> dict[str, Any]:
        """The full human-readable trace: data and words (`fingerprint`, `catalog_version`,
        `selected`, `ranked`, `removed`, `plan`, …)."""
        return {
            "evaluator_version": self.evaluator_version,
            "fingerprint": self.policy.fingerprint,
            "policy_digest": self.policy.digest,
            "catalog_version": self.catalog.version,
            "catalog_name": self.catalog.name,
            "tokens": None
            if self.tokens is None
            else {"in": self.tokens.tokens_in, "out": self.tokens.tokens_out},
            "rules": list(self.rule_ids),
            "selected": None if self.selected is None else self._ranked_json(self.selected),
            "why_selected": self.why_selected(),
            "plan": [self.entry(index).id for index in self.plan],
            "ranked": [self._ranked_json(index) for index in self.ranked],
            "removed": [
                {
                    "id": self.entry(index).id,
                    "index": index,
                    "failed": [f.to_json() for f in self.failures_of(index)],
                    "text": self.explain_removal(index),
                }
                for index in self.removed()
            ],
        }


class TraceMismatchError(RouterError):
    """Compact trace data does not belong to the policy or catalog it is combined with."""


def _contains(sorted_indices: tuple[int, ...], index: int) -> bool:
    at = bisect_left(sorted_indices, index)
    return at < len(sorted_indices) and sorted_indices[at] == index
