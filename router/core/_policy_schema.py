"""The `sigma-pol/v1` policy as a JSON Schema (draft 2020-12), made from the validator's tables.

The schema says what a schema can say — the keys, the operators and their operands, the types,
the limits on lengths and counts — so that clients in any language can generate types and check a
policy before they send it. The validator (`parse_policy`) stays the authority: attribute names
and types (they depend on the catalog), unique rule ids, the nesting depth, the node count and
integers beyond ±(2⁵³ − 1) are its alone.
"""

from __future__ import annotations

from typing import Any

from router.core._canonical import MAX_SAFE_INTEGER
from router.core._expr import CMP_OPS
from router.core._parse import (
    ATTRIBUTE_KINDS,
    DIRECTIONS,
    FALLBACK_KEYS,
    MAX_DEPTH,
    MAX_FALLBACK_ATTEMPTS,
    MAX_LIST_VALUES,
    MAX_NODES,
    MAX_RANK_KEYS,
    MAX_RULE_ID,
    MAX_RULES,
    MAX_STRING,
    MAX_TOKENS,
    OPERAND_COUNTS,
    OPERATORS,
    RESERVED_RULE_PREFIX,
    RULE_ID_PATTERN,
    RULE_KEYS,
    TOKENS_KEYS,
)
from router.core._policy import DEFAULT_MAX_ATTEMPTS, DEFAULT_RANK, POLICY_VERSION

__all__ = ["POLICY_SCHEMA_PATH", "policy_json_schema"]

POLICY_SCHEMA_PATH = "/x/schema/sigma-pol-v1.json"
"""Where the gateway serves the schema, and its `$id` (a URI reference, resolved against the
server that serves it)."""

_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _string(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_STRING,
        "description": description,
    }


def _operand_schemas(ref: str) -> dict[str, list[dict[str, Any]]]:
    """What follows the operator in each fixed-arity expression."""
    attribute: dict[str, Any] = {"$ref": ref.format(name="attribute")}
    value = _string("A string value.")
    values: dict[str, Any] = {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_LIST_VALUES,
        "items": value,
        "description": "A non-empty list of string values.",
    }
    number: dict[str, Any] = {
        "type": "number",
        "description": f"A finite number (an integer within ±{MAX_SAFE_INTEGER}).",
    }
    return {
        "is": [attribute],
        "cmp": [attribute, {"enum": list(CMP_OPS)}, number],
        "eq": [attribute, value],
        "ne": [attribute, value],
        "has": [attribute, value],
        "in": [attribute, values],
        "nin": [attribute, values],
    }


def _expression_defs(ref: str, max_depth: int | None) -> dict[str, Any]:
    """`expression` and its shapes: one per atom operator, and one for the logical operators
    together; with `max_depth`, one set per nesting level (`expression_1`, …), the deepest
    without the logical operators."""
    operands = _operand_schemas(ref)
    logical = [op for op in OPERATORS if op not in operands]
    levels = [""] if max_depth is None else [f"_{depth}" for depth in range(1, max_depth + 1)]
    defs: dict[str, Any] = {}
    for i, level in enumerate(levels):
        inner = level if max_depth is None else (levels[i + 1] if i + 1 < len(levels) else None)
        shapes: list[str] = []
        if inner is not None:
            # One shape for all/any/not, so that a validator descends into the operands once
            # per level (a shape per operator made it try each of them: exponential in depth).
            name = f"expression_logical{level}"
            defs[name] = {
                "type": "array",
                "prefixItems": [{"enum": logical}],
                "items": {"$ref": ref.format(name=f"expression{inner}")},
                "minItems": 2,
                "allOf": [
                    {
                        "if": {"prefixItems": [{"const": op}]},
                        "then": {"maxItems": 1 + OPERAND_COUNTS[op]},
                    }
                    for op in logical
                    if op in OPERAND_COUNTS
                ],
                "description": "all and any: true when every / some operand is; not: one operand.",
            }
            shapes.append(name)
        for op in OPERATORS:
            tail = operands.get(op)
            if tail is None:
                continue
            name = f"expression_{op}{level}"
            defs[name] = {
                "type": "array",
                "prefixItems": [{"const": op}, *tail],
                "items": False,
                "minItems": 1 + OPERAND_COUNTS[op],
                "description": f"Its attribute must be a {ATTRIBUTE_KINDS[op]} attribute of the "
                "catalog.",
            }
            shapes.append(name)
        defs[f"expression{level}"] = {
            "description": 'An expression: a list starting with an operator, e.g. ["is", '
            f'"no_log"] (nested at most {MAX_DEPTH} levels; at most {MAX_NODES} nodes in a '
            "policy).",
            "oneOf": [{"$ref": ref.format(name=name)} for name in shapes],
        }
    return defs


def policy_json_schema(
    ref_template: str = "#/$defs/{name}", *, max_depth: int | None = None
) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a `sigma-pol/v1` policy document.

    `ref_template` places the definitions: the default keeps them in the document's `$defs`;
    an OpenAPI document passes `"#/components/schemas/sigma_pol_v1_{name}"` and lifts the
    returned `$defs` into its components. `max_depth` (at most `MAX_DEPTH`) writes the nesting
    limit into the schema, one definition per level, for tools that cannot follow a recursive
    schema; without it expressions nest freely and the validator checks the depth.
    """
    if max_depth is not None and not 1 <= max_depth <= MAX_DEPTH:
        raise ValueError(f"max_depth must be within 1..{MAX_DEPTH}")
    ref = ref_template
    top = "expression" if max_depth is None else "expression_1"
    rule_id = {
        "type": "string",
        "pattern": f"^{RULE_ID_PATTERN.pattern}$",
        "maxLength": MAX_RULE_ID,
        "not": {"pattern": "^" + RESERVED_RULE_PREFIX.replace(".", "\\.")},
        "description": "A unique rule id; ids starting with "
        f'"{RESERVED_RULE_PREFIX}" are reserved for built-in rules.',
    }
    count = {"type": "integer", "minimum": 0, "maximum": MAX_TOKENS}
    defs: dict[str, Any] = {
        "attribute": _string(
            "An attribute of the catalog (its schema gives the types), or cost_per_run where a "
            "number attribute is expected."
        ),
        "rule": {
            "type": "object",
            "properties": {"id": rule_id, "when": {"$ref": ref.format(name=top)}},
            "required": list(RULE_KEYS),
            "additionalProperties": False,
        },
        **_expression_defs(ref, max_depth),
    }
    properties: dict[str, Any] = {
        "v": {"const": POLICY_VERSION},
        "rules": {
            "type": "array",
            "maxItems": MAX_RULES,
            "items": {
                "anyOf": [
                    {"$ref": ref.format(name="rule")},
                    {"$ref": ref.format(name=top)},
                ]
            },
            "description": "Rule objects or bare expressions (a bare one gets a derived id).",
        },
        "rank": {
            "type": ["array", "null"],
            "minItems": 1,
            "maxItems": MAX_RANK_KEYS,
            "items": {
                "type": "array",
                "prefixItems": [{"enum": list(DIRECTIONS)}, {"$ref": ref.format(name="attribute")}],
                "items": False,
                "minItems": 2,
            },
            "default": [list(key) for key in DEFAULT_RANK],
            "description": "Sort keys [direction, number attribute], each attribute once "
            "(null: the default).",
        },
        "tokens": {
            "type": "object",
            "properties": {key: count for key in TOKENS_KEYS},
            "required": list(TOKENS_KEYS),
            "additionalProperties": False,
        },
        "fallback": {
            "type": "object",
            "properties": {
                FALLBACK_KEYS[0]: {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_FALLBACK_ATTEMPTS,
                    "default": DEFAULT_MAX_ATTEMPTS,
                }
            },
            "additionalProperties": False,
        },
    }
    return {
        "$schema": _DRAFT,
        "$id": POLICY_SCHEMA_PATH,
        "title": f"{POLICY_VERSION} routing policy",
        "description": "A routing policy for unhardcoded (docs/policy.md). The validator stays "
        "the authority: it also checks attribute names and types against the catalog, unique "
        "rule ids, the nesting depth and the node count.",
        "type": "object",
        "properties": properties,
        "required": ["v", "rules"],
        "additionalProperties": False,
        "$defs": defs,
    }
