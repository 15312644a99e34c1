"""Every validation rule of sigma-pol/v1 rejects with the pointer of the offending node."""

from __future__ import annotations

from typing import Any

import pytest

from router.core import (
    MAX_DEPTH,
    MAX_FALLBACK_ATTEMPTS,
    MAX_LIST_VALUES,
    MAX_NODES,
    MAX_RULES,
    MAX_STRING,
    MAX_TOKENS,
    Policy,
    PolicyError,
)
from router.services.catalogs import bundled_catalog

SCHEMA = bundled_catalog().schema


def doc(*rules: object, **top: Any) -> dict[str, Any]:
    return {"v": "sigma-pol/v1", "rules": list(rules), **top}


def nested(depth: int) -> list[Any]:
    expr: list[Any] = ["is", "no_log"]
    for _ in range(depth - 1):
        expr = ["not", expr]
    return expr


CASES: list[tuple[str, object, str, str]] = [
    ("not an object", ["is", "no_log"], "", "a policy object"),
    ("wrong version", {"v": "sigma-pol/v2", "rules": []}, "/v", '"sigma-pol/v1"'),
    ("missing version", {"rules": []}, "/v", '"sigma-pol/v1"'),
    ("missing rules", {"v": "sigma-pol/v1"}, "/rules", 'missing key "rules"'),
    ("rules not a list", doc() | {"rules": {}}, "/rules", "a list of rules"),
    ("unknown top-level key", doc(extra=1), "/extra", 'unknown key "extra"'),
    (
        "too many rules",
        doc(*[["is", "no_log"]] * (MAX_RULES + 1)),
        "/rules",
        f"limit of {MAX_RULES}",
    ),
    ("expression not a list", doc("no_log"), "/rules/0", "an expression"),
    ("empty expression", doc([]), "/rules/0", "an expression"),
    ("unknown operator", doc(["xor", "a"]), "/rules/0/0", 'unknown operator "xor"'),
    ("operator not a string", doc([1, "a"]), "/rules/0/0", "unknown operator 1"),
    ("all without operands", doc(["all"]), "/rules/0", "at least one operand"),
    (
        "not with two operands",
        doc(["not", ["is", "no_log"], ["is", "no_log"]]),
        "/rules/0",
        "takes 1",
    ),
    ("is arity", doc(["is"]), "/rules/0", "takes 1 operand"),
    ("cmp arity", doc(["cmp", "bench_intelligence", "ge"]), "/rules/0", "takes 3 operands"),
    (
        "unknown attribute",
        doc(["eq", "regoin", "eu"]),
        "/rules/0/1",
        'unknown attribute "regoin" (did you mean "region"? expected one of: id, model, provider',
    ),
    (
        "attribute of the wrong type",
        doc(["is", "region"]),
        "/rules/0/1",
        '"region" is a string attribute; is needs a boolean attribute',
    ),
    (
        "cmp on a string attribute",
        doc(["cmp", "provider", "ge", 1]),
        "/rules/0/1",
        "cmp needs a number attribute",
    ),
    (
        "has on a string attribute",
        doc(["has", "region", "eu"]),
        "/rules/0/1",
        "has needs a string_list attribute",
    ),
    (
        "in on a list attribute",
        doc(["in", "capabilities", ["tools"]]),
        "/rules/0/1",
        "in needs a string attribute",
    ),
    (
        "cost_per_run outside cmp",
        doc(["eq", "cost_per_run", "x"]),
        "/rules/0/1",
        "cost_per_run is a number",
    ),
    ("attribute not a string", doc(["is", 3]), "/rules/0/1", "an attribute name"),
    (
        "attribute too long",
        doc(["is", "a" * (MAX_STRING + 1)]),
        "/rules/0/1",
        f"exceeds {MAX_STRING}",
    ),
    (
        "unknown comparison",
        doc(["cmp", "bench_intelligence", "gte", 1]),
        "/rules/0/2",
        "a comparison: eq, ne, lt, le, gt, ge",
    ),
    (
        "bool where a number is expected",
        doc(["cmp", "bench_intelligence", "ge", True]),
        "/rules/0/3",
        "expected a number, found true",
    ),
    (
        "string where a number is expected",
        doc(["cmp", "bench_intelligence", "ge", "0.5"]),
        "/rules/0/3",
        "expected a number",
    ),
    ("NaN", doc(["cmp", "bench_intelligence", "ge", float("nan")]), "/rules/0/3", "finite number"),
    ("Infinity", doc(["cmp", "bench_intelligence", "ge", float("inf")]), "/rules/0/3", "finite"),
    (
        "huge integer",
        doc(["cmp", "context_window", "ge", 2**60]),
        "/rules/0/3",
        "an integer within",
    ),
    ("eq value not a string", doc(["eq", "region", 1]), "/rules/0/2", "a string value"),
    (
        "string value too long",
        doc(["eq", "region", "x" * (MAX_STRING + 1)]),
        "/rules/0/2",
        f"exceeds {MAX_STRING}",
    ),
    ("in without a list", doc(["in", "region", "eu"]), "/rules/0/2", "a non-empty list of strings"),
    ("in with an empty list", doc(["in", "region", []]), "/rules/0/2", "a non-empty list"),
    ("in value not a string", doc(["in", "region", ["eu", 2]]), "/rules/0/2/1", "a string value"),
    (
        "in list too long",
        doc(["in", "region", [str(i) for i in range(MAX_LIST_VALUES + 1)]]),
        "/rules/0/2",
        f"exceeds {MAX_LIST_VALUES}",
    ),
    (
        "too deep",
        doc(nested(MAX_DEPTH + 1)),
        "/rules/0" + "/1" * MAX_DEPTH,
        f"deeper than {MAX_DEPTH}",
    ),
    (
        "too many nodes",
        doc(*[["in", "region", [f"r{i}-{j}" for j in range(200)]] for i in range(6)]),
        "/rules/4/2",
        f"exceeds {MAX_NODES} nodes",
    ),
    ("rule object without when", doc({"id": "a"}), "/rules/0", 'missing key "when"'),
    (
        "rule object with unknown key",
        doc({"id": "a", "when": ["is", "no_log"], "note": 1}),
        "/rules/0/note",
        'unknown key "note"',
    ),
    ("rule id not a string", doc({"id": 3, "when": ["is", "no_log"]}), "/rules/0/id", "a rule id"),
    (
        "rule id with a space",
        doc({"id": "a b", "when": ["is", "no_log"]}),
        "/rules/0/id",
        "a rule id",
    ),
    (
        "reserved rule id",
        doc({"id": "catalog.mine", "when": ["is", "no_log"]}),
        "/rules/0/id",
        "reserved for built-in rules",
    ),
    (
        "duplicate rule id",
        doc({"id": "a", "when": ["is", "no_log"]}, {"id": "a", "when": ["eq", "region", "eu"]}),
        "/rules/1/id",
        'duplicate rule id "a" (also at /rules/0/id)',
    ),
    (
        "duplicate bare rule",
        doc(["is", "no_log"], ["not", ["not", ["is", "no_log"]]]),
        "/rules/1",
        "duplicate rule id",
    ),
    ("rank not a list", doc(rank="cost"), "/rank", "a list of 1 to 8 keys"),
    ("empty rank", doc(rank=[]), "/rank", "a list of 1 to 8 keys"),
    ("rank key shape", doc(rank=[["asc"]]), "/rank/0", '["asc" or "desc", attr]'),
    ("rank direction", doc(rank=[["up", "cost_per_run"]]), "/rank/0/0", '"asc" or "desc"'),
    ("rank on a string", doc(rank=[["asc", "region"]]), "/rank/0/1", "rank needs a number"),
    (
        "rank twice on one attribute",
        doc(rank=[["asc", "price_in"], ["desc", "price_in"]]),
        "/rank/1/1",
        '"price_in" is ranked twice',
    ),
    ("tokens not an object", doc(tokens=[1, 2]), "/tokens", "an object with keys in, out"),
    ("tokens missing out", doc(tokens={"in": 1}), "/tokens", 'missing key "out"'),
    ("tokens unknown key", doc(tokens={"in": 1, "out": 1, "x": 1}), "/tokens/x", 'unknown key "x"'),
    ("tokens negative", doc(tokens={"in": -1, "out": 1}), "/tokens/in", "an integer from 0"),
    ("tokens fractional", doc(tokens={"in": 1.5, "out": 1}), "/tokens/in", "an integer from 0"),
    ("tokens bool", doc(tokens={"in": True, "out": 1}), "/tokens/in", "an integer from 0"),
    (
        "tokens too many",
        doc(tokens={"in": MAX_TOKENS + 1, "out": 1}),
        "/tokens/in",
        f"to {MAX_TOKENS}",
    ),
    ("fallback unknown key", doc(fallback={"attempts": 2}), "/fallback/attempts", "unknown key"),
    (
        "max_attempts zero",
        doc(fallback={"max_attempts": 0}),
        "/fallback/max_attempts",
        f"an integer from 1 to {MAX_FALLBACK_ATTEMPTS}",
    ),
    (
        "max_attempts too large",
        doc(fallback={"max_attempts": MAX_FALLBACK_ATTEMPTS + 1}),
        "/fallback/max_attempts",
        "an integer from 1",
    ),
]


@pytest.mark.parametrize(
    ("document", "pointer", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rejection_names_the_pointer(document: object, pointer: str, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_json(document, SCHEMA)
    issues = [(issue.pointer, issue.message) for issue in info.value.issues]
    assert any(p == pointer and fragment in m for p, m in issues), issues


def test_every_problem_is_reported_with_found_and_expected() -> None:
    document = doc(["eq", "regoin", "eu"], ["cmp", "bench_intelligence", "ge", True], extra=1)
    with pytest.raises(PolicyError) as info:
        Policy.from_json(document, SCHEMA)
    error = info.value
    assert [i.pointer for i in error.issues] == ["/extra", "/rules/0/1", "/rules/1/3"]
    assert (error.pointer, error.found) == ("/extra", '"extra"')
    assert error.issues[2].found == "true"
    assert error.issues[2].expected == "a number"
    assert str(error).splitlines()[1].startswith('/rules/0/1: unknown attribute "regoin"')


def test_pointer_tokens_are_escaped() -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_json(doc(**{"a/b~c": 1}), SCHEMA)
    assert info.value.pointer == "/a~1b~0c"


def test_limits_are_inclusive() -> None:
    Policy.from_json(doc(nested(MAX_DEPTH)), SCHEMA)
    Policy.from_json(doc(["in", "region", [str(i) for i in range(MAX_LIST_VALUES)]]), SCHEMA)
    Policy.from_json(doc(*[["eq", "region", str(i)] for i in range(MAX_RULES)]), SCHEMA)


def test_without_a_schema_only_structure_is_checked() -> None:
    policy = Policy.from_json(doc(["is", "approved"], ["cmp", "tier", "ge", 2]))
    assert len(policy.rules) == 2
    with pytest.raises(PolicyError):
        Policy.from_json(doc(["cmp", "tier", "ge", "2"]))
