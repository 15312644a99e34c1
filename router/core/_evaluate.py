"""The evaluator: filter → rank → select → fallback plan, over a catalog's column index.

Every rule is evaluated on every entry (no short-circuit across rules) with three-valued logic: an
atom on a missing attribute is UNKNOWN; `not` keeps UNKNOWN; `all` is FALSE if an operand is FALSE,
else UNKNOWN if one is UNKNOWN; `any` is TRUE if an operand is TRUE, else UNKNOWN if one is
UNKNOWN. An entry passes a rule only when the rule is TRUE (fail closed). Each node yields a pair of
masks (TRUE, FALSE); UNKNOWN is neither.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from router.core._catalog import COST_PER_RUN, Catalog
from router.core._columns import BoolArray, Columns, FloatArray, columns_of
from router.core._errors import MissingTokensError, NoEntryPasses
from router.core._expr import AllOf, AnyOf, Cmp, Eq, Expr, Has, In, Is, Not
from router.core._features import RequestFeatures
from router.core._policy import Policy, Tokens
from router.core._trace import BUILTIN_RULES, EVALUATOR_VERSION, Trace, failure_bitmap

_Masks = tuple[BoolArray, BoolArray]
_Cost = tuple[FloatArray, BoolArray]
"""`cost_per_run` of every entry and where it is known (an unknown price is NaN, not known)."""

_COMPARE: dict[str, Callable[[FloatArray, float], BoolArray]] = {
    "eq": np.equal,
    "ne": np.not_equal,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}


def _masks(expr: Expr, cols: Columns, cost: _Cost | None) -> _Masks:
    match expr:
        case AllOf(operands):
            true, false = _masks(operands[0], cols, cost)
            for operand in operands[1:]:
                t, f = _masks(operand, cols, cost)
                true = true & t
                false = false | f
            return true, false
        case AnyOf(operands):
            true, false = _masks(operands[0], cols, cost)
            for operand in operands[1:]:
                t, f = _masks(operand, cols, cost)
                true = true | t
                false = false & f
            return true, false
        case Not(operand):
            true, false = _masks(operand, cols, cost)
            return false, true
        case Is(attr):
            boolean = cols.booleans.get(attr)
            if boolean is None:
                return cols.none, cols.none
            return boolean.true, boolean.present & ~boolean.true
        case Cmp(attr, op, value):
            if attr == COST_PER_RUN:
                if cost is None:
                    return cols.none, cols.none
                values, known = cost
                outcome = _COMPARE[op](values, float(value))
                return outcome & known, ~outcome & known
            number = cols.numbers.get(attr)
            if number is None:
                return cols.none, cols.none
            outcome = _COMPARE[op](number.values, float(value))
            return outcome & number.present, ~outcome & number.present
        case Eq(attr, value):
            string = cols.strings.get(attr)
            if string is None:
                return cols.none, cols.none
            code = string.vocabulary.get(value)
            if code is None:
                return cols.none, string.present
            outcome = string.codes == code
            return outcome, string.present & ~outcome
        case In(attr, values):
            string = cols.strings.get(attr)
            if string is None:
                return cols.none, cols.none
            table = np.zeros(len(string.vocabulary) + 1, dtype=np.bool_)
            for value in values:
                code = string.vocabulary.get(value)
                if code is not None:
                    table[code] = True
            outcome = table[string.codes]
            return outcome, string.present & ~outcome
        case Has(attr, value):
            column = cols.lists.get(attr)
            if column is None:
                return cols.none, cols.none
            member = column.members.get(value)
            if member is None:
                return cols.none, column.present
            return member, column.present & ~member


def _status_mask(cols: Columns) -> BoolArray:
    string = cols.strings.get("status")
    if string is None:
        return cols.none
    code = string.vocabulary.get("active")
    return cols.none if code is None else string.codes == code


def effective_tokens(policy: Policy, features: RequestFeatures | None) -> Tokens | None:
    """The token counts `cost_per_run` uses: the policy's `tokens`, else the request's features."""
    if policy.tokens is not None:
        return policy.tokens
    if features is not None:
        return Tokens(features.tokens_in, features.tokens_out, features.tokens_cached)
    return None


def decide(policy: Policy, catalog: Catalog, features: RequestFeatures | None = None) -> Trace:
    """Evaluate the policy over the catalog: the full trace, whether or not an entry passes.

    A pure function of (policy, catalog, features). Raise `MissingTokensError` when `cost_per_run`
    is needed and neither the policy nor the features give token counts.
    """
    cols = columns_of(catalog)
    tokens = effective_tokens(policy, features)
    if tokens is None and policy.uses_cost():
        raise MissingTokensError(
            "cost_per_run needs token counts: the policy has no tokens and the request gave none"
        )
    cost: _Cost | None = None
    if tokens is not None:
        values = cols.cost_per_run(tokens.tokens_in, tokens.tokens_out, tokens.tokens_cached)
        cost = (values, ~np.isnan(values))

    passes = [_status_mask(cols)]
    passes.extend(_masks(rule.when, cols, cost)[0] for rule in policy.rules)
    passing = np.logical_and.reduce(passes) if len(passes) > 1 else passes[0]
    failures = tuple(failure_bitmap(~mask) for mask in passes)

    candidates = np.flatnonzero(passing)
    sort_keys: list[FloatArray | BoolArray] = []
    for key in policy.rank:
        if key.attr == COST_PER_RUN:
            assert cost is not None  # uses_cost() guaranteed tokens
            known = cost[1][candidates]
            missing = ~known  # an unknown price ranks after every priced entry
            values = np.where(known, cost[0][candidates], 0.0)
        else:
            number = cols.numbers.get(key.attr)
            if number is None:
                values = np.zeros(len(candidates))
                missing = ~cols.none[: len(candidates)]
            else:
                missing = ~number.present[candidates]
                values = np.where(missing, 0.0, number.values[candidates])
        sort_keys.append(missing)
        sort_keys.append(values if key.direction == "asc" else -values)
    # np.lexsort sorts by the last key first: primary key last, entry index (= id order) first.
    order = np.lexsort([candidates, *reversed(sort_keys)]) if len(candidates) else candidates
    ranked = tuple(candidates[order].tolist())
    return Trace(
        evaluator_version=EVALUATOR_VERSION,
        policy=policy,
        catalog=catalog,
        features=features,
        tokens=tokens,
        rule_ids=(*BUILTIN_RULES, *(rule.id for rule in policy.rules)),
        failures=failures,
        ranked=ranked,
        plan=ranked[: policy.max_attempts],
    )


def evaluate(policy: Policy, catalog: Catalog, features: RequestFeatures | None = None) -> Trace:
    """Like `decide`, but raise `NoEntryPasses` (carrying the trace) when no entry passes."""
    trace = decide(policy, catalog, features)
    if trace.selected is None:
        raise NoEntryPasses(trace)
    return trace


class Evaluator:
    """`evaluate` with a bounded memo keyed by (policy digest, catalog version, features).

    Decisions are a pure function of those three, so a repeated request costs one dict lookup.
    """

    def __init__(self, maxsize: int = 4096) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._maxsize = maxsize
        self._memo: OrderedDict[tuple[str, str, RequestFeatures | None], Trace] = OrderedDict()

    def evaluate(
        self, policy: Policy, catalog: Catalog, features: RequestFeatures | None = None
    ) -> Trace:
        """The decision's trace; raise `NoEntryPasses` when no entry passes."""
        key = (policy.digest, catalog.version, features)
        memo = self._memo
        trace = memo.get(key)
        if trace is None:
            trace = decide(policy, catalog, features)
            memo[key] = trace
            if len(memo) > self._maxsize:
                memo.popitem(last=False)
        else:
            memo.move_to_end(key)
        if trace.selected is None:
            raise NoEntryPasses(trace)
        return trace

    def __len__(self) -> int:
        return len(self._memo)
