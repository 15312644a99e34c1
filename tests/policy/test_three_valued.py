"""Fail closed: a missing attribute makes an atom UNKNOWN, and only TRUE passes a rule.

Two-valued logic would make such an atom false, and `not` of that false is true, so
`["not", ["in", attr, […]]]` would pass an entry that lacks the attribute (fail open). These tests
pin the three-valued semantics instead.
"""

from __future__ import annotations

import pytest

from router.core import Policy, decide
from tests.policy.support import catalog_of, entry, policy_of

# `jurisdiction` is optional (unlike `provider`, which every entry has): entry "bare" lacks it.
CATALOG = catalog_of(
    entry("bare", no_log=None),
    entry("cn", jurisdiction="cn", no_log=False),
    entry("de", jurisdiction="de", no_log=True),
)


def passing(*rules: object) -> list[str]:
    trace = decide(Policy.from_json(policy_of(*rules), CATALOG.schema), CATALOG)
    return [CATALOG.entries[i].id for i in trace.ranked]


def test_not_in_does_not_pass_an_entry_missing_the_attribute() -> None:
    assert passing(["not", ["in", "jurisdiction", ["cn", "ru"]]]) == ["de"]
    assert passing(["nin", "jurisdiction", ["cn", "ru"]]) == ["de"]


def test_the_trace_says_missing() -> None:
    trace = decide(
        Policy.from_json(
            policy_of({"id": "dpa.block", "when": ["nin", "jurisdiction", ["cn"]]}), CATALOG.schema
        ),
        CATALOG,
    )
    bare = CATALOG.index_of("bare")
    (failure,) = trace.failures_of(bare)
    assert failure.outcome == "unknown"
    assert str(failure) == 'dpa.block (jurisdiction missing, needs jurisdiction ≠ "cn")'
    (cn_failure,) = trace.failures_of(CATALOG.index_of("cn"))
    assert cn_failure.outcome == "false"


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (["is", "no_log"], ["de"]),
        (["not", ["is", "no_log"]], ["cn"]),  # bare: not unknown = unknown
        (
            ["any", ["is", "no_log"], ["eq", "region", "eu"]],
            ["bare", "cn", "de"],
        ),  # unknown or true
        (["all", ["is", "no_log"], ["eq", "region", "eu"]], ["de"]),  # unknown and true = unknown
        (["not", ["all", ["is", "no_log"], ["eq", "region", "us"]]], ["bare", "cn", "de"]),
        # bare: all(unknown, false) = false, so not(...) = true
        (["not", ["any", ["is", "no_log"], ["eq", "region", "us"]]], ["cn"]),
        # bare: any(unknown, false) = unknown
        (["ne", "jurisdiction", "cn"], ["de"]),
        (["not", ["not", ["eq", "jurisdiction", "de"]]], ["de"]),
        (["not", ["cmp", "score", "ge", 1]], []),  # nobody has a score: unknown everywhere
    ],
)
def test_three_valued_connectives(rule: object, expected: list[str]) -> None:
    catalog = catalog_of(
        entry("bare", no_log=None),
        entry("cn", jurisdiction="cn", no_log=False),
        entry("de", jurisdiction="de", no_log=True),
        schema={"jurisdiction": "string", "no_log": "boolean", "score": "number"},
    )
    trace = decide(Policy.from_json(policy_of(rule), catalog.schema), catalog)
    assert [catalog.entries[i].id for i in trace.ranked] == expected


def test_attribute_unknown_to_the_catalog_is_unknown_everywhere() -> None:
    # a policy validated without a schema (e.g. replayed against another catalog version)
    policy = Policy.from_json(policy_of(["not", ["is", "approved"]]))
    trace = decide(policy, CATALOG)
    assert trace.ranked == ()
    assert trace.failure(0, policy.rules[0].id).outcome == "unknown"


def test_attribute_of_another_type_is_unknown() -> None:
    policy = Policy.from_json(policy_of(["not", ["eq", "no_log", "yes"]]))
    assert decide(policy, CATALOG).ranked == ()


def test_rank_and_cmp_on_an_attribute_of_another_type_treat_it_as_missing() -> None:
    # validated without a schema: "tier" is a string in this catalog, not a number
    catalog = catalog_of(entry("b", tier="gold"), entry("a", tier="silver"), entry("c", score=1))
    document = policy_of(rank=[["desc", "tier"], ["asc", "score"]])
    trace = decide(Policy.from_json(document), catalog)
    assert [catalog.entries[i].id for i in trace.ranked] == ["c", "a", "b"]
    assert trace.sort_keys(catalog.index_of("a")) == (None, None)
    assert trace.to_json()["ranked"][1]["keys"] == {"tier": None, "score": None}
    cmp = decide(Policy.from_json(policy_of(["cmp", "tier", "ge", 1])), catalog)
    assert cmp.ranked == ()
    assert {f.outcome for i in range(3) for f in cmp.failures_of(i)} == {"unknown"}
