"""Properties of the policy core, checked on random policies and random catalogs.

The most important one: the column evaluator agrees with `reference_decision`, a naive per-entry
evaluator written here from the documented semantics, on the *submitted* (not normalized) policy.
"""

from __future__ import annotations

import copy
import operator
import random
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.core import Catalog, Policy, RequestFeatures, Trace, decide

STRINGS = ["a", "b", "c", "d"]
NUMBERS = [0, 0.5, 1, 2, 3.25]
MEMBERS = ["x", "y", "z"]
STRING_ATTRS = ["provider", "region", "tier"]
NUMBER_ATTRS = ["price_in", "score", "bench", "cost_per_run"]
BOOL_ATTRS = ["no_log", "approved"]
CMP: dict[str, Callable[[float, float], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- random catalogs ---------------------------------------------------------------------------


@st.composite
def entries(draw: st.DrawFn, entry_id: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": entry_id,
        "model": "m",
        "provider": draw(st.sampled_from(STRINGS)),
        "region": draw(st.sampled_from(STRINGS)),
        "price_in": draw(st.sampled_from(NUMBERS)),
        "price_out": draw(st.sampled_from(NUMBERS)),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "status": st.sampled_from(["active", "active", "active", "deprecated"]),
        "tier": st.sampled_from(STRINGS),
        "score": st.sampled_from(NUMBERS),
        "bench": st.sampled_from(NUMBERS),
        "no_log": st.booleans(),
        "approved": st.booleans(),
        "capabilities": st.lists(st.sampled_from(MEMBERS), max_size=3, unique=True),
    }
    for attr, values in optional.items():
        if draw(st.integers(0, 4)) > 0:  # present 4 times out of 5
            entry[attr] = draw(values)
    return entry


@st.composite
def catalogs(draw: st.DrawFn) -> Catalog:
    ids = draw(
        st.lists(st.text("abAB/@-", min_size=1, max_size=4), min_size=1, max_size=12, unique=True)
    )
    return Catalog.from_json({"name": "random", "entries": [draw(entries(i)) for i in ids]})


# -- random policies (raw JSON, not normalized) ------------------------------------------------

atoms = st.one_of(
    st.tuples(st.just("is"), st.sampled_from(BOOL_ATTRS)),
    st.tuples(
        st.just("cmp"),
        st.sampled_from(NUMBER_ATTRS),
        st.sampled_from(list(CMP)),
        st.sampled_from([*NUMBERS, 0.001, 0.002, 1.5]),
    ),
    st.tuples(
        st.sampled_from(["eq", "ne"]), st.sampled_from(STRING_ATTRS), st.sampled_from(STRINGS)
    ),
    st.tuples(
        st.sampled_from(["in", "nin"]),
        st.sampled_from(STRING_ATTRS),
        st.lists(st.sampled_from(STRINGS), min_size=1, max_size=4),
    ),
    st.tuples(st.just("has"), st.just("capabilities"), st.sampled_from(MEMBERS)),
).map(list)

expressions = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: ["all", *xs]),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: ["any", *xs]),
        inner.map(lambda x: ["not", x]),
    ),
    max_leaves=8,
)


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    rules = draw(st.lists(expressions, max_size=5))
    rank_attrs = draw(st.lists(st.sampled_from(NUMBER_ATTRS), min_size=1, max_size=3, unique=True))
    document: dict[str, Any] = {
        "v": "sigma-pol/v1",
        "rules": [{"id": f"rule{i}", "when": when} for i, when in enumerate(rules)],
        "rank": [[draw(st.sampled_from(["asc", "desc"])), attr] for attr in rank_attrs],
        "tokens": {"in": draw(st.integers(0, 5000)), "out": draw(st.integers(0, 5000))},
        "fallback": {"max_attempts": draw(st.integers(1, 4))},
    }
    return document


# -- the reference evaluator -------------------------------------------------------------------


def value_of(entry: dict[str, Any], attr: str, tokens: dict[str, int]) -> Any:
    if attr == "cost_per_run":
        return (tokens["in"] * entry["price_in"] + tokens["out"] * entry["price_out"]) / 1e6
    return entry.get(attr)


def holds(expr: list[Any], entry: dict[str, Any], tokens: dict[str, int]) -> bool | None:
    """Three-valued truth on one entry: True, False, or None (unknown)."""
    op = expr[0]
    if op in ("all", "any"):
        results = [holds(e, entry, tokens) for e in expr[1:]]
        decisive, other = (False, True) if op == "all" else (True, False)
        if decisive in results:
            return decisive
        return None if None in results else other
    if op == "not":
        inner = holds(expr[1], entry, tokens)
        return None if inner is None else not inner
    value = value_of(entry, expr[1], tokens)
    if value is None:
        return None
    if op == "is":
        return value is True
    if op == "cmp":
        return CMP[expr[2]](float(value), float(expr[3]))
    if op == "eq":
        return bool(value == expr[2])
    if op == "ne":
        return bool(value != expr[2])
    if op == "in":
        return value in expr[2]
    if op == "nin":
        return value not in expr[2]
    assert op == "has"
    return expr[2] in value


def reference_decision(document: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """Filter, rank and plan, one entry at a time, straight from the documented semantics."""
    tokens = document["tokens"]
    rows = [e.to_json() for e in catalog.entries]
    failed: dict[str, set[str]] = {}
    for row in rows:
        if row.get("status") != "active":
            failed.setdefault(row["id"], set()).add("catalog.status")
        for rule in document["rules"]:
            if holds(rule["when"], row, tokens) is not True:
                failed.setdefault(row["id"], set()).add(rule["id"])

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for direction, attr in document["rank"]:
            value = value_of(row, attr, tokens)
            if value is None:
                parts.append((1, 0.0))
            else:
                parts.append((0, float(value) if direction == "asc" else -float(value)))
        return (*parts, row["id"])

    ranked = [row["id"] for row in sorted((r for r in rows if r["id"] not in failed), key=key)]
    return {
        "failed": failed,
        "ranked": ranked,
        "plan": ranked[: document["fallback"]["max_attempts"]],
    }


def fast_decision(trace: Trace) -> dict[str, Any]:
    ids = [e.id for e in trace.catalog.entries]
    return {
        "failed": {ids[i]: set(rules) for i, rules in trace.removed().items()},
        "ranked": [ids[i] for i in trace.ranked],
        "plan": [ids[i] for i in trace.plan],
    }


@SETTINGS
@given(policies(), catalogs())
def test_fast_evaluator_agrees_with_the_reference(
    document: dict[str, Any], catalog: Catalog
) -> None:
    policy = Policy.from_json(document)
    assert fast_decision(decide(policy, catalog)) == reference_decision(document, catalog)


@SETTINGS
@given(policies(), catalogs())
def test_normalized_policy_decides_like_the_submitted_one(
    document: dict[str, Any], catalog: Catalog
) -> None:
    normalized = Policy.from_json(document).to_json()
    assert reference_decision(normalized, catalog) == reference_decision(document, catalog)


@SETTINGS
@given(policies())
def test_normalization_is_idempotent(document: dict[str, Any]) -> None:
    policy = Policy.from_json(document)
    again = Policy.from_json(policy.to_json())
    assert again.to_json() == policy.to_json()
    assert again.fingerprint == policy.fingerprint


def shuffled(expr: Any, rng: random.Random) -> Any:
    if not isinstance(expr, list):
        return expr
    if expr[0] in ("all", "any"):
        operands = [shuffled(e, rng) for e in expr[1:]]
        rng.shuffle(operands)
        return [expr[0], *operands]
    if expr[0] == "not":
        return ["not", shuffled(expr[1], rng)]
    if expr[0] in ("in", "nin"):
        values = list(expr[2])
        rng.shuffle(values)
        return [expr[0], expr[1], values]
    return expr


@SETTINGS
@given(policies(), st.randoms(use_true_random=False))
def test_permutations_keep_the_fingerprint(document: dict[str, Any], rng: random.Random) -> None:
    permuted = copy.deepcopy(document)
    rng.shuffle(permuted["rules"])
    for rule in permuted["rules"]:
        rule["when"] = shuffled(rule["when"], rng)
    assert Policy.from_json(permuted).fingerprint == Policy.from_json(document).fingerprint


def literal_paths(expr: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Paths to the literals of atoms (compared value, list value, attribute) in an expression."""
    if expr[0] in ("all", "any", "not"):
        return [p for i, e in enumerate(expr[1:], 1) for p in literal_paths(e, (*path, i))]
    paths = [(*path, 1), (*path, len(expr) - 1)]
    if expr[0] == "in":
        paths = [(*path, 1), *((*path, 2, i) for i in range(len(expr[2])))]
    return paths


@SETTINGS
@given(policies(), st.randoms(use_true_random=False))
def test_a_change_of_meaning_changes_the_fingerprint(
    document: dict[str, Any], rng: random.Random
) -> None:
    policy = Policy.from_json(document)
    normalized = policy.to_json()
    changes: list[Callable[[dict[str, Any]], None]] = [
        lambda d: d["fallback"].update(max_attempts=d["fallback"]["max_attempts"] % 4 + 1),
        lambda d: d["tokens"].update({"in": d["tokens"]["in"] + 1}),
        lambda d: d["rank"][0].__setitem__(0, "desc" if d["rank"][0][0] == "asc" else "asc"),
    ]
    if normalized["rules"]:
        rule = rng.choice(normalized["rules"])
        path = rng.choice(literal_paths(rule["when"]))

        def change_literal(d: dict[str, Any]) -> None:
            target = next(r for r in d["rules"] if r["id"] == rule["id"])["when"]
            for step in path[:-1]:
                target = target[step]
            old = target[path[-1]]
            target[path[-1]] = old + 0.125 if isinstance(old, int | float) else f"{old}-changed"

        changes += [
            change_literal,
            lambda d: d["rules"].pop(),
            lambda d: d["rules"][0].update(id="zz"),
        ]
    mutated = copy.deepcopy(normalized)
    rng.choice(changes)(mutated)
    assert Policy.from_json(mutated).fingerprint != policy.fingerprint


@SETTINGS
@given(policies(), catalogs())
def test_evaluation_is_deterministic(document: dict[str, Any], catalog: Catalog) -> None:
    policy = Policy.from_json(document)
    first = decide(policy, catalog)
    twin = Catalog.from_json(copy.deepcopy(catalog.to_json()))
    second = decide(Policy.from_json(copy.deepcopy(document)), twin)
    fields = ("evaluator_version", "rule_ids", "failures", "ranked", "plan", "tokens")
    assert [getattr(first, f) for f in fields] == [getattr(second, f) for f in fields]
    assert first.to_json() == second.to_json()


@SETTINGS
@given(policies(), catalogs(), st.integers(0, 10_000), st.integers(0, 10_000))
def test_plan_is_a_prefix_of_the_ranked_passing_set(
    document: dict[str, Any], catalog: Catalog, tokens_in: int, tokens_out: int
) -> None:
    del document["tokens"]
    policy = Policy.from_json(document)
    trace = decide(policy, catalog, RequestFeatures(tokens_in, tokens_out))
    removed = trace.removed()
    assert set(trace.plan) <= set(trace.ranked)
    assert trace.plan == trace.ranked[: policy.max_attempts]
    assert not set(trace.ranked) & set(removed)
    assert set(trace.ranked) | set(removed) == set(range(len(catalog.entries)))
    keys = [
        (
            *(
                (1, 0.0) if v is None else (0, v if k.direction == "asc" else -v)
                for k, v in zip(policy.rank, trace.sort_keys(i), strict=True)
            ),
            i,
        )
        for i in trace.ranked
    ]
    assert keys == sorted(keys)
