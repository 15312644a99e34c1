"""Expression nodes of `sigma-pol/v1`, their canonical (normalized) form and their human rendering.

Nodes are built normalized (see `normalize`): equivalent expressions are equal nodes with the same
canonical JSON, which is what the rule ids and the policy fingerprint are computed from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from router.core._canonical import canonical_bytes

CmpOp = Literal["eq", "ne", "lt", "le", "gt", "ge"]
CMP_OPS: tuple[CmpOp, ...] = ("eq", "ne", "lt", "le", "gt", "ge")
_CMP_COMPLEMENT: dict[CmpOp, CmpOp] = {
    "eq": "ne",
    "ne": "eq",
    "lt": "ge",
    "ge": "lt",
    "le": "gt",
    "gt": "le",
}
_CMP_SYMBOL: dict[CmpOp, str] = {"eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥"}


@dataclass(frozen=True, slots=True)
class AllOf:
    """`["all", e1, e2, …]`: true when every operand is true."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """`["any", e1, e2, …]`: true when some operand is true."""

    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """`["not", e]`: true when the operand is false (unknown stays unknown)."""

    operand: Expr


@dataclass(frozen=True, slots=True)
class Is:
    """`["is", attr]`: the boolean attribute is true."""

    attr: str


@dataclass(frozen=True, slots=True)
class Cmp:
    """`["cmp", attr, op, number]`: numeric comparison (`attr` may be `cost_per_run`)."""

    attr: str
    op: CmpOp
    value: int | float


@dataclass(frozen=True, slots=True)
class Eq:
    """`["eq", attr, "value"]`: the string attribute equals the value."""

    attr: str
    value: str


@dataclass(frozen=True, slots=True)
class In:
    """`["in", attr, ["v1", "v2", …]]`: the string attribute is one of the values (sorted,
    unique)."""

    attr: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Has:
    """`["has", attr, "value"]`: the string-list attribute contains the value."""

    attr: str
    value: str


Expr = AllOf | AnyOf | Not | Is | Cmp | Eq | In | Has
Atom = Is | Cmp | Eq | In | Has


def to_json(expr: Expr) -> list[Any]:
    """The canonical JSON array of a (normalized) expression."""
    match expr:
        case AllOf(operands):
            return ["all", *(to_json(e) for e in operands)]
        case AnyOf(operands):
            return ["any", *(to_json(e) for e in operands)]
        case Not(operand):
            return ["not", to_json(operand)]
        case Is(attr):
            return ["is", attr]
        case Cmp(attr, op, value):
            return ["cmp", attr, op, value]
        case Eq(attr, value):
            return ["eq", attr, value]
        case In(attr, values):
            return ["in", attr, list(values)]
        case Has(attr, value):
            return ["has", attr, value]


def _sort_key(expr: Expr) -> bytes:
    return canonical_bytes(to_json(expr))


def _merge(kind: type[AllOf] | type[AnyOf], operands: list[Expr]) -> Expr:
    flat: dict[bytes, Expr] = {}
    for operand in operands:
        children = operand.operands if isinstance(operand, kind) else (operand,)
        for child in children:
            flat.setdefault(_sort_key(child), child)
    ordered = tuple(flat[key] for key in sorted(flat))
    return ordered[0] if len(ordered) == 1 else kind(ordered)


def normalize(expr: Expr) -> Expr:
    """The canonical form of an expression. Each step keeps the three-valued meaning:

    - `all`/`any` nested in the same operator are flattened; operands are sorted by their RFC 8785
      bytes and deduplicated; a single operand stands for itself;
    - `in` values are sorted and deduplicated; `in` with one value is `eq`;
    - `not not e` is `e`; `not (cmp a op x)` is `cmp a op' x` with the complementary operator
      (numbers are never NaN, and a missing attribute is unknown on both sides);
    - numbers are canonical (integral values are integers).
    """
    match expr:
        case AllOf(operands):
            return _merge(AllOf, [normalize(e) for e in operands])
        case AnyOf(operands):
            return _merge(AnyOf, [normalize(e) for e in operands])
        case Not(operand):
            inner = normalize(operand)
            if isinstance(inner, Not):
                return inner.operand
            if isinstance(inner, Cmp):
                return Cmp(inner.attr, _CMP_COMPLEMENT[inner.op], inner.value)
            return Not(inner)
        case In(attr, values):
            unique = tuple(sorted(set(values)))
            return Eq(attr, unique[0]) if len(unique) == 1 else In(attr, unique)
        case Is() | Cmp() | Eq() | Has():
            return expr


def attributes(expr: Expr) -> tuple[str, ...]:
    """The attribute names an expression reads, sorted and unique."""
    found: set[str] = set()

    def walk(node: Expr) -> None:
        match node:
            case AllOf(operands) | AnyOf(operands):
                for child in operands:
                    walk(child)
            case Not(operand):
                walk(operand)
            case Is(attr) | Cmp(attr) | Eq(attr) | In(attr) | Has(attr):
                found.add(attr)

    walk(expr)
    return tuple(sorted(found))


def show_value(value: object) -> str:
    """A value as it appears in explanations: strings quoted (JSON), numbers short."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, tuple | list):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def render(expr: Expr) -> str:
    """The expression in words, e.g. `region = "eu"`, `bench_intelligence ≥ 0.5`."""
    match expr:
        case AllOf(operands):
            return "(" + " and ".join(render(e) for e in operands) + ")"
        case AnyOf(operands):
            return "(" + " or ".join(render(e) for e in operands) + ")"
        case Not(Eq(attr, value)):
            return f"{attr} ≠ {show_value(value)}"
        case Not(In(attr, values)):
            return f"{attr} not in {show_value(values)}"
        case Not(Is(attr)):
            return f"{attr} is false"
        case Not(Has(attr, value)):
            return f"{attr} lacks {show_value(value)}"
        case Not(operand):
            return f"not {render(operand)}"
        case Is(attr):
            return f"{attr} is true"
        case Cmp(attr, op, value):
            return f"{attr} {_CMP_SYMBOL[op]} {show_value(value)}"
        case Eq(attr, value):
            return f"{attr} = {show_value(value)}"
        case In(attr, values):
            return f"{attr} in {show_value(values)}"
        case Has(attr, value):
            return f"{attr} has {show_value(value)}"
