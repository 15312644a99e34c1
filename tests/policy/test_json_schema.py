"""The policy's JSON Schema against the validator: every example validates, the invalid policies
the schema can describe are refused by both, and no policy the validator accepts is refused by
the schema (the validator stays the authority for the rest)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.core import MAX_DEPTH, Policy, PolicyError, policy_json_schema
from router.core._parse import ATTRIBUTE_KINDS, OPERAND_COUNTS, OPERATORS, TOP_KEYS
from router.services.catalogs import bundled_catalog
from tests.policy.test_properties import policies
from tests.policy.test_validation import CASES

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = policy_json_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# What a schema cannot say (the validator's alone): attribute names and types depend on the
# catalog; integers beyond IEEE-754's, NaN/Infinity (not JSON), unique rule ids and rank
# attributes, the depth (unless bounded, see below) and the node count.
BEYOND_THE_SCHEMA = {
    "too deep",
    "too many nodes",
    "duplicate rule id",
    "duplicate bare rule",
    "rank twice on one attribute",
    "unknown attribute",
    "attribute of the wrong type",
    "cmp on a string attribute",
    "has on a string attribute",
    "in on a list attribute",
    "cost_per_run outside cmp",
    "NaN",
    "Infinity",
    "huge integer",
    "rank on a string",
}


def example_documents() -> list[tuple[str, Any]]:
    """Every policy file shipped or documented, and every policy in the docs' JSON blocks."""
    found = [
        (str(path.relative_to(ROOT)), json.loads(path.read_text()))
        for path in [
            *sorted((ROOT / "router/data/policies").glob("*.json")),
            *sorted((ROOT / "docs/examples").glob("*.json")),
        ]
    ]
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for i, block in enumerate(re.findall(r"```json\n(.*?)```", page.read_text(), re.S)):
            try:
                document = json.loads(block)
            except json.JSONDecodeError:  # JSON lines, or an excerpt with "…"
                continue
            if isinstance(document, dict) and document.get("v") == "sigma-pol/v1":
                found.append((f"{page.name} block {i}", document))
    return found


EXAMPLES = example_documents()


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for depth in (1, 3):
        jsonschema.Draft202012Validator.check_schema(policy_json_schema(max_depth=depth))


def test_the_schema_follows_the_validator_tables() -> None:
    assert tuple(SCHEMA["properties"]) == TOP_KEYS
    defs = SCHEMA["$defs"]
    shapes = [d["$ref"].rsplit("/", 1)[1] for d in defs["expression"]["oneOf"]]
    logical = [op for op in OPERATORS if op not in ATTRIBUTE_KINDS]
    assert shapes == ["expression_logical"] + [f"expression_{op}" for op in ATTRIBUTE_KINDS]
    assert defs["expression_logical"]["prefixItems"] == [{"enum": logical}]
    for op in ATTRIBUTE_KINDS:
        shape = defs[f"expression_{op}"]
        assert shape["minItems"] == len(shape["prefixItems"]) == 1 + OPERAND_COUNTS[op]


def test_validating_deep_policies_takes_one_descent_per_level() -> None:
    expression: Any = ["is", "no_log"]
    for i in range(MAX_DEPTH - 1):
        expression = [("not", "all", "any")[i % 3], expression]
    assert VALIDATOR.is_valid({"v": "sigma-pol/v1", "rules": [expression]})


@pytest.mark.parametrize(("name", "document"), EXAMPLES, ids=[name for name, _ in EXAMPLES])
def test_every_example_policy_validates(name: str, document: Any) -> None:
    Policy.from_json(document)  # valid (each against its own catalog; here, its structure)
    assert list(VALIDATOR.iter_errors(document)) == []


def test_there_are_examples_from_every_source() -> None:
    names = [name for name, _ in EXAMPLES]
    assert any(n.startswith("router/data/policies/") for n in names)
    assert any(n.startswith("docs/examples/") for n in names)
    assert any(".md block" in n for n in names)


DESCRIBED = [case for case in CASES if case[0] not in BEYOND_THE_SCHEMA]


@pytest.mark.parametrize(
    ("name", "document"), [c[:2] for c in DESCRIBED], ids=[c[0] for c in DESCRIBED]
)
def test_invalid_policies_are_refused_by_both(name: str, document: Any) -> None:
    with pytest.raises(PolicyError):
        Policy.from_json(document, bundled_catalog().schema)
    assert not VALIDATOR.is_valid(document), name


def test_most_invalid_policies_are_within_what_the_schema_says() -> None:
    assert len(DESCRIBED) >= 2 * len(BEYOND_THE_SCHEMA)
    assert {case[0] for case in CASES} >= BEYOND_THE_SCHEMA


def test_the_depth_bounded_schema_refuses_deeper_nesting() -> None:
    bounded = jsonschema.Draft202012Validator(policy_json_schema(max_depth=2))
    assert bounded.is_valid({"v": "sigma-pol/v1", "rules": [["not", ["is", "no_log"]]]})
    assert not bounded.is_valid({"v": "sigma-pol/v1", "rules": [["not", ["not", ["is", "x"]]]]})
    with pytest.raises(ValueError, match="max_depth"):
        policy_json_schema(max_depth=MAX_DEPTH + 1)


# -- soundness: nothing the validator accepts is refused by the schema --------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["is", "not", "all", "eq", "in", "cmp", "ge", "no_log", "region", "asc"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
near_policies = st.fixed_dictionaries(
    {"v": st.sampled_from(["sigma-pol/v1", "sigma-pol/v2"])},
    optional={
        "rules": st.lists(
            st.one_of(json_values, st.fixed_dictionaries({"when": json_values})), max_size=3
        ),
        "rank": st.one_of(st.none(), json_values),
        "tokens": st.one_of(st.fixed_dictionaries({"in": scalars, "out": scalars}), json_values),
        "fallback": st.one_of(st.fixed_dictionaries({"max_attempts": scalars}), json_values),
    },
)
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _accepted(document: Any) -> bool:
    try:
        Policy.from_json(document)
    except PolicyError:
        return False
    return True


@PROPERTY
@given(document=st.one_of(policies(), near_policies))
def test_the_schema_never_refuses_a_policy_the_validator_accepts(document: Any) -> None:
    if _accepted(document):
        assert list(VALIDATOR.iter_errors(document)) == []
