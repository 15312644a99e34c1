"""Validation of `sigma-pol/v1` documents into normalized `Policy` objects.

Every problem is collected (not only the first) as an `Issue` with the RFC 6901 pointer of the
offending node in the submitted document, what was found and what was expected.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any, cast

from router.core._canonical import canonical_number, describe, is_number, number_problem
from router.core._catalog import COST_PER_RUN
from router.core._errors import Issue, PolicyError, join_pointer
from router.core._expr import (
    CMP_OPS,
    AllOf,
    AnyOf,
    Cmp,
    CmpOp,
    Eq,
    Expr,
    Has,
    In,
    Is,
    Not,
    normalize,
)
from router.core._policy import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_RANK,
    POLICY_VERSION,
    Direction,
    Policy,
    RankKey,
    Rule,
    Tokens,
    derived_rule_id,
)

MAX_DEPTH = 32
"""Deepest nesting of expressions (a rule's `when` is at depth 1)."""
MAX_NODES = 1000
"""Most expression nodes plus list values in one policy."""
MAX_LIST_VALUES = 256
"""Most values in one `in`/`nin` list."""
MAX_RULES = 64
"""Most rules in one policy."""
MAX_STRING = 256
"""Longest attribute name or string value."""
MAX_RULE_ID = 128
"""Longest rule id."""
MAX_RANK_KEYS = 8
"""Most rank keys."""
MAX_FALLBACK_ATTEMPTS = 16
"""Largest `fallback.max_attempts`."""
MAX_TOKENS = 100_000_000
"""Largest `tokens.in` / `tokens.out`."""

RULE_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")
RESERVED_RULE_PREFIX = "catalog."
"""Rule ids starting with this are the evaluator's built-in rules (e.g. `catalog.status`)."""

# The validator's tables; `router.core._policy_schema` generates the JSON Schema from them.
TOP_KEYS = ("v", "rules", "rank", "tokens", "fallback")
"""The keys of a policy object."""
RULE_KEYS = ("id", "when")
"""The keys of a rule object."""
TOKENS_KEYS = ("in", "out")
"""The keys of `tokens` (both required)."""
FALLBACK_KEYS = ("max_attempts",)
"""The keys of `fallback`."""
DIRECTIONS = ("asc", "desc")
"""The directions of a rank key."""
OPERATORS = ("all", "any", "not", "is", "cmp", "eq", "ne", "in", "nin", "has")
"""Every expression operator."""
OPERAND_COUNTS = {"not": 1, "is": 1, "cmp": 3, "eq": 2, "ne": 2, "has": 2, "in": 2, "nin": 2}
"""The number of operands of each fixed-arity operator (`all` and `any` take one or more)."""
ATTRIBUTE_KINDS = {
    "is": "boolean",
    "cmp": "number",
    "eq": "string",
    "ne": "string",
    "in": "string",
    "nin": "string",
    "has": "string_list",
}
"""The attribute type each atom's first operand must have."""


class _Context:
    def __init__(self, schema: Mapping[str, str] | None) -> None:
        self.schema = schema
        self.issues: list[Issue] = []
        self.nodes = 0
        self.node_limit_reported = False

    def bad(self, pointer: str, found: object, expected: str, message: str | None = None) -> None:
        found_text = describe(found)
        self.issues.append(
            Issue(
                pointer, found_text, expected, message or f"expected {expected}, found {found_text}"
            )
        )

    def count(self, pointer: str, n: int = 1) -> bool:
        self.nodes += n
        if self.nodes > MAX_NODES:
            if not self.node_limit_reported:
                self.node_limit_reported = True
                self.bad(
                    pointer,
                    self.nodes,
                    f"at most {MAX_NODES} nodes in a policy",
                    f"the policy exceeds {MAX_NODES} nodes (expressions and list values)",
                )
            return False
        return True

    def string(self, pointer: str, value: object, what: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.bad(pointer, value, what)
            return None
        if not value.isascii() and not _encodable(value):
            self.bad(
                pointer,
                value,
                f"{what} of Unicode characters",
                "a lone surrogate (an unpaired \\ud800-\\udfff escape) is not a character",
            )
            return None
        if len(value) > MAX_STRING:
            self.bad(
                pointer,
                value,
                f"{what} of at most {MAX_STRING} characters",
                f"string of {len(value)} characters exceeds {MAX_STRING}",
            )
            return None
        return value

    def attribute(self, pointer: str, value: object, kind: str, op: str) -> str | None:
        attr = self.string(pointer, value, "an attribute name")
        if attr is None:
            return None
        if attr == COST_PER_RUN:
            if kind == "number":
                return attr
            self.bad(
                pointer,
                attr,
                f"a {kind} attribute",
                f"cost_per_run is a number; {op} needs a {kind} attribute",
            )
            return None
        if self.schema is None:
            return attr
        actual = self.schema.get(attr)
        fitting = sorted(a for a, t in self.schema.items() if t == kind)
        if kind == "number":
            fitting = sorted([*fitting, COST_PER_RUN])
        if actual is None:
            close = difflib.get_close_matches(attr, list(self.schema), n=1)
            hint = f'did you mean "{close[0]}"? ' if close else ""
            self.bad(
                pointer,
                attr,
                f"a {kind} attribute",
                f"unknown attribute {describe(attr)} ({hint}expected one of: {_listing(fitting)})",
            )
            return None
        if actual != kind:
            self.bad(
                pointer,
                attr,
                f"a {kind} attribute",
                f"{describe(attr)} is a {actual} attribute; {op} needs a {kind} attribute "
                f"(one of: {_listing(fitting)})",
            )
            return None
        return attr


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _listing(names: list[str], limit: int = 24) -> str:
    if not names:
        return "none in this catalog"
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def _expr(raw: object, pointer: str, depth: int, ctx: _Context) -> Expr | None:
    if depth > MAX_DEPTH:
        ctx.bad(
            pointer,
            raw,
            f"nesting of at most {MAX_DEPTH} levels",
            f"expression nested deeper than {MAX_DEPTH} levels",
        )
        return None
    if not ctx.count(pointer):
        return None
    if not isinstance(raw, list) or not raw:
        ctx.bad(
            pointer, raw, 'an expression: a list starting with an operator, e.g. ["is", "no_log"]'
        )
        return None
    op = raw[0]
    op_pointer = pointer + "/0"
    if op not in OPERATORS:
        ctx.bad(
            op_pointer,
            op,
            "an operator: " + ", ".join(OPERATORS),
            f"unknown operator {describe(op)} (expected one of: {', '.join(OPERATORS)})",
        )
        return None
    args = raw[1:]

    def arity(n: int, shape: str) -> bool:
        if len(args) != n:
            ctx.bad(
                pointer,
                raw,
                shape,
                f"{op} takes {n} operand{'s' if n > 1 else ''}: {shape}, found {len(args)}",
            )
            return False
        return True

    if op in ("all", "any"):
        if not args:
            ctx.bad(
                pointer,
                raw,
                f'["{op}", expr, …] with at least one operand',
                f"{op} needs at least one operand",
            )
            return None
        operands = [_expr(a, f"{pointer}/{i + 1}", depth + 1, ctx) for i, a in enumerate(args)]
        if any(o is None for o in operands):
            return None
        kept = tuple(cast(list[Expr], operands))
        return AllOf(kept) if op == "all" else AnyOf(kept)
    if op == "not":
        if not arity(OPERAND_COUNTS[op], '["not", expr]'):
            return None
        inner = _expr(args[0], pointer + "/1", depth + 1, ctx)
        return None if inner is None else Not(inner)
    if op == "is":
        if not arity(OPERAND_COUNTS[op], '["is", attr]'):
            return None
        attr = ctx.attribute(pointer + "/1", args[0], "boolean", op)
        return None if attr is None else Is(attr)
    if op == "cmp":
        if not arity(OPERAND_COUNTS[op], '["cmp", attr, op, number]'):
            return None
        attr = ctx.attribute(pointer + "/1", args[0], "number", op)
        cmp_op = args[1]
        ok = attr is not None
        if cmp_op not in CMP_OPS:
            ctx.bad(pointer + "/2", cmp_op, "a comparison: " + ", ".join(CMP_OPS))
            ok = False
        value = args[2]
        if not is_number(value):
            ctx.bad(pointer + "/3", value, "a number")
            ok = False
        else:
            problem = number_problem(value)
            if problem is not None:
                ctx.bad(pointer + "/3", value, problem)
                ok = False
        if not ok:
            return None
        return Cmp(cast(str, attr), cast(CmpOp, cmp_op), canonical_number(value))
    if op in ("eq", "ne", "has"):
        if not arity(OPERAND_COUNTS[op], f'["{op}", attr, "value"]'):
            return None
        attr = ctx.attribute(pointer + "/1", args[0], ATTRIBUTE_KINDS[op], op)
        value = ctx.string(pointer + "/2", args[1], "a string value")
        if attr is None or value is None:
            return None
        if op == "has":
            return Has(attr, value)
        return Eq(attr, value) if op == "eq" else Not(Eq(attr, value))
    # in / nin
    if not arity(OPERAND_COUNTS[op], f'["{op}", attr, ["value", …]]'):
        return None
    attr = ctx.attribute(pointer + "/1", args[0], "string", op)
    values_raw = args[1]
    list_pointer = pointer + "/2"
    if not isinstance(values_raw, list) or not values_raw:
        ctx.bad(list_pointer, values_raw, "a non-empty list of strings")
        return None
    if len(values_raw) > MAX_LIST_VALUES:
        ctx.bad(
            list_pointer,
            values_raw,
            f"at most {MAX_LIST_VALUES} values",
            f"list of {len(values_raw)} values exceeds {MAX_LIST_VALUES}",
        )
        return None
    if not ctx.count(list_pointer, len(values_raw)):
        return None
    values = [
        ctx.string(f"{list_pointer}/{i}", v, "a string value") for i, v in enumerate(values_raw)
    ]
    if attr is None or any(v is None for v in values):
        return None
    node = In(attr, tuple(cast(list[str], values)))
    return node if op == "in" else Not(node)


def _rules(raw: object, ctx: _Context) -> list[Rule]:
    if not isinstance(raw, list):
        ctx.bad("/rules", raw, "a list of rules")
        return []
    if len(raw) > MAX_RULES:
        ctx.bad(
            "/rules",
            raw,
            f"at most {MAX_RULES} rules",
            f"{len(raw)} rules exceed the limit of {MAX_RULES}",
        )
        return []
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(raw):
        pointer = f"/rules/{i}"
        rule_id: str | None
        id_pointer = pointer
        if isinstance(item, dict):
            for key in item:
                if key not in RULE_KEYS:
                    ctx.bad(
                        join_pointer(pointer, key),
                        key,
                        'only the keys "id" and "when"',
                        f"unknown key {describe(key)} (expected: id, when)",
                    )
            id_pointer = pointer + "/id"
            raw_id = item.get("id")
            rule_id = None
            if not isinstance(raw_id, str) or not RULE_ID_PATTERN.fullmatch(raw_id):
                ctx.bad(
                    id_pointer,
                    raw_id,
                    "a rule id: letters, digits and _ . : - (starting with a letter or digit)",
                )
            elif len(raw_id) > MAX_RULE_ID:
                ctx.bad(id_pointer, raw_id, f"a rule id of at most {MAX_RULE_ID} characters")
            elif raw_id.startswith(RESERVED_RULE_PREFIX):
                ctx.bad(
                    id_pointer,
                    raw_id,
                    f'an id not starting with "{RESERVED_RULE_PREFIX}"',
                    f'rule ids starting with "{RESERVED_RULE_PREFIX}" are reserved for '
                    "built-in rules",
                )
            else:
                rule_id = raw_id
            if "when" not in item:
                ctx.bad(pointer, item, 'a "when" expression', 'missing key "when"')
                continue
            when = _expr(item["when"], pointer + "/when", 1, ctx)
        else:
            when = _expr(item, pointer, 1, ctx)
            rule_id = None if when is None else derived_rule_id(normalize(when))
        if when is None or rule_id is None:
            continue
        if rule_id in seen:
            ctx.bad(
                id_pointer,
                rule_id,
                "a unique rule id",
                f"duplicate rule id {describe(rule_id)} (also at {seen[rule_id]})",
            )
            continue
        seen[rule_id] = id_pointer
        rules.append(Rule(rule_id, normalize(when)))
    return sorted(rules, key=lambda r: r.id)


def _rank(raw: object, ctx: _Context) -> tuple[RankKey, ...]:
    if raw is None:
        return tuple(RankKey(d, a) for d, a in DEFAULT_RANK)
    if not isinstance(raw, list) or not raw or len(raw) > MAX_RANK_KEYS:
        ctx.bad("/rank", raw, f'a list of 1 to {MAX_RANK_KEYS} keys like ["asc", "cost_per_run"]')
        return ()
    keys: list[RankKey] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        pointer = f"/rank/{i}"
        if not isinstance(item, list) or len(item) != 2:
            ctx.bad(pointer, item, '["asc" or "desc", attr]')
            continue
        direction, attr_raw = item
        if direction not in DIRECTIONS:
            ctx.bad(pointer + "/0", direction, '"asc" or "desc"')
        attr = ctx.attribute(pointer + "/1", attr_raw, "number", "rank")
        if attr is not None and attr in seen:
            ctx.bad(
                pointer + "/1", attr, "each attribute once", f"{describe(attr)} is ranked twice"
            )
            continue
        if attr is not None and direction in DIRECTIONS:
            seen.add(attr)
            keys.append(RankKey(cast(Direction, direction), attr))
    return tuple(keys)


def _count(pointer: str, raw: object, low: int, high: int, ctx: _Context) -> int | None:
    if not is_number(raw) or number_problem(cast(float, raw)) is not None:
        ctx.bad(pointer, raw, f"an integer from {low} to {high}")
        return None
    value = canonical_number(cast(float, raw))
    if not isinstance(value, int) or not low <= value <= high:
        ctx.bad(pointer, raw, f"an integer from {low} to {high}")
        return None
    return value


def _object(
    pointer: str, raw: object, keys: tuple[str, ...], ctx: _Context
) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        ctx.bad(pointer, raw, "an object with keys " + ", ".join(keys))
        return None
    for key in raw:
        if key not in keys:
            ctx.bad(
                join_pointer(pointer, key),
                key,
                "one of the keys " + ", ".join(keys),
                f"unknown key {describe(key)} (expected: {', '.join(keys)})",
            )
    return raw


def parse_policy(obj: object, schema: Mapping[str, str] | None = None) -> Policy:
    """Validate and normalize a `sigma-pol/v1` document; raise `PolicyError` with every problem."""
    ctx = _Context(schema)
    if not isinstance(obj, dict):
        ctx.bad("", obj, 'a policy object {"v": "sigma-pol/v1", "rules": […], …}')
        raise PolicyError(ctx.issues)
    for key in obj:
        if key not in TOP_KEYS:
            ctx.bad(
                join_pointer("", key),
                key,
                "one of the keys " + ", ".join(TOP_KEYS),
                f"unknown key {describe(key)} (expected one of: {', '.join(TOP_KEYS)})",
            )
    if obj.get("v") != POLICY_VERSION:
        ctx.bad("/v", obj.get("v"), f'"{POLICY_VERSION}"')
    if "rules" not in obj:
        ctx.bad("/rules", None, "a list of rules", 'missing key "rules"')
    rules = _rules(obj.get("rules", []), ctx)
    rank = _rank(obj.get("rank"), ctx)
    tokens: Tokens | None = None
    if "tokens" in obj:
        raw = _object("/tokens", obj["tokens"], TOKENS_KEYS, ctx)
        if raw is not None:
            counts: list[int | None] = []
            for key in TOKENS_KEYS:
                if key not in raw:
                    ctx.bad("/tokens", raw, f'a "{key}" count', f'missing key "{key}"')
                    counts.append(None)
                else:
                    counts.append(_count(f"/tokens/{key}", raw[key], 0, MAX_TOKENS, ctx))
            if counts[0] is not None and counts[1] is not None:
                tokens = Tokens(counts[0], counts[1])
    max_attempts = DEFAULT_MAX_ATTEMPTS
    if "fallback" in obj:
        raw = _object("/fallback", obj["fallback"], FALLBACK_KEYS, ctx)
        if raw is not None and "max_attempts" in raw:
            count = _count(
                "/fallback/max_attempts", raw["max_attempts"], 1, MAX_FALLBACK_ATTEMPTS, ctx
            )
            max_attempts = count if count is not None else max_attempts
    if ctx.issues:
        raise PolicyError(ctx.issues)
    return Policy(tuple(rules), rank, tokens, max_attempts)
