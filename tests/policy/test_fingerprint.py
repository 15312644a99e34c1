"""Normalization and the fingerprint, frozen by golden vectors."""

from __future__ import annotations

import pytest

from router.core import Eq, Policy, derived_rule_id, fingerprint_text
from router.core._canonical import canonical_bytes
from tests.policy.support import example_policy

# Frozen forever: a policy's fingerprint must never change across releases.
GOLDEN = {
    "enterprise-eu": (
        "2955917977-959330428 (sigma-pol/v1)",
        "b02fba99392e387c99681f4c863e86124a84743ee69ca99e091b05b071683d8d",
    ),
    "free-tier": (
        "839817668-3671957456 (sigma-pol/v1)",
        "320e99c4dadd9fd0ba89161326fb92053d653c1009d1165eee77a7d7b43e1f19",
    ),
    "regulated": (
        "2516752476-3091958844 (sigma-pol/v1)",
        "9602985cb84b8c3c0f29b901ada2d3f6346d012bbb57653fae507c91b1099311",
    ),
    "vip": (
        "894268371-3263701583 (sigma-pol/v1)",
        "354d73d3c288224fa20d0d883eda6a0c943b0416e24fd4f7eb5a53f47ca802b6",
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_fingerprints(name: str) -> None:
    policy = example_policy(name)
    assert (policy.fingerprint, policy.digest) == GOLDEN[name]


def test_golden_normalized_bytes() -> None:
    assert canonical_bytes(example_policy("free-tier").to_json()) == (
        b'{"fallback":{"max_attempts":3},"rank":[["asc","cost_per_run"]],"rules":[{"id":'
        b'"tier.free.floor","when":["cmp","bench_intelligence","ge",0.5]}],"tokens":{"in":1500,'
        b'"out":500},"v":"sigma-pol/v1"}'
    )


def test_fingerprint_display_reads_two_big_endian_uint32() -> None:
    digest = bytes.fromhex("11f30ad83ee0b6ef") + bytes(24)
    assert fingerprint_text(digest) == "301140696-1054914287 (sigma-pol/v1)"


def test_derived_rule_id_is_content_based() -> None:
    assert derived_rule_id(Eq("region", "eu")) == "r.8b5813bb287f"
    a = Policy.from_json({"v": "sigma-pol/v1", "rules": [["eq", "region", "eu"], ["is", "no_log"]]})
    b = Policy.from_json(
        {"v": "sigma-pol/v1", "rules": [["is", "no_log"], ["in", "region", ["eu"]]]}
    )
    assert [r.id for r in a.rules] == [r.id for r in b.rules]
    assert "r.8b5813bb287f" in [r.id for r in a.rules]
    assert a.fingerprint == b.fingerprint


def policy(*rules: object, **top: object) -> Policy:
    return Policy.from_json({"v": "sigma-pol/v1", "rules": list(rules), **top})


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (
            ["all", ["is", "a"], ["all", ["is", "b"], ["is", "c"]]],
            ["all", ["is", "c"], ["is", "b"], ["is", "a"]],
        ),
        (["any", ["is", "a"], ["is", "a"]], ["is", "a"]),
        (["in", "x", ["b", "a", "b"]], ["in", "x", ["a", "b"]]),
        (["in", "x", ["a"]], ["eq", "x", "a"]),
        (["nin", "x", ["b", "a"]], ["not", ["in", "x", ["a", "b"]]]),
        (["ne", "x", "a"], ["not", ["eq", "x", "a"]]),
        (["not", ["not", ["is", "a"]]], ["is", "a"]),
        (["not", ["cmp", "n", "lt", 1]], ["cmp", "n", "ge", 1.0]),
        (["cmp", "n", "ge", 1.0], ["cmp", "n", "ge", 1]),
    ],
)
def test_equivalent_expressions_normalize_equal(left: object, right: object) -> None:
    a = policy({"id": "r", "when": left})
    b = policy({"id": "r", "when": right})
    assert a.to_json() == b.to_json()
    assert a.fingerprint == b.fingerprint


def test_defaults_are_explicit_in_the_normalized_form() -> None:
    bare = policy()
    explicit = policy(rank=[["asc", "cost_per_run"]], fallback={"max_attempts": 3})
    assert bare.fingerprint == explicit.fingerprint
    assert bare.to_json()["fallback"] == {"max_attempts": 3}


@pytest.mark.parametrize(
    "changed",
    [
        {"rules": [{"id": "r", "when": ["cmp", "n", "gt", 1]}]},
        {"rules": [{"id": "r", "when": ["cmp", "n", "ge", 1.5]}]},
        {"rules": [{"id": "s", "when": ["cmp", "n", "ge", 1]}]},
        {"rules": []},
        {"rank": [["desc", "cost_per_run"]]},
        {"rank": [["asc", "cost_per_run"], ["desc", "n"]]},
        {"tokens": {"in": 1, "out": 2}},
        {"fallback": {"max_attempts": 2}},
    ],
)
def test_any_change_of_meaning_changes_the_fingerprint(changed: dict[str, object]) -> None:
    base = {"v": "sigma-pol/v1", "rules": [{"id": "r", "when": ["cmp", "n", "ge", 1]}]}
    assert Policy.from_json(base).fingerprint != Policy.from_json(base | changed).fingerprint
