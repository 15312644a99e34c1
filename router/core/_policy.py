"""The `sigma-pol/v1` policy: an immutable, normalized model, its rule ids and its fingerprint.

Build one with `Policy.from_json(document, schema)`; `router.core._parse` does the validation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from router.core._canonical import canonical_bytes
from router.core._expr import Expr, attributes, render, to_json

POLICY_VERSION = "sigma-pol/v1"
"""The value of a policy's `v` key, and the tag shown after every fingerprint."""

DEFAULT_RANK: tuple[tuple[Literal["asc", "desc"], str], ...] = (("asc", "cost_per_run"),)
"""The rank used when a policy has no `rank`: cheapest first."""

DEFAULT_MAX_ATTEMPTS = 3
"""The fallback plan's length when a policy has no `fallback.max_attempts`."""

Direction = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class Rule:
    """One named rule: an entry passes it only when `when` is TRUE for the entry."""

    id: str
    when: Expr

    def to_json(self) -> dict[str, Any]:
        """The rule's canonical JSON object."""
        return {"id": self.id, "when": to_json(self.when)}

    def describe(self) -> str:
        """The rule's condition in words, e.g. `region = "eu"`."""
        return render(self.when)

    def attributes(self) -> tuple[str, ...]:
        """The attributes the rule reads."""
        return attributes(self.when)


@dataclass(frozen=True, slots=True)
class RankKey:
    """One sort key: an attribute (a number attribute or `cost_per_run`) and a direction."""

    direction: Direction
    attr: str

    def to_json(self) -> list[str]:
        """The key as `[direction, attr]`."""
        return [self.direction, self.attr]


@dataclass(frozen=True, slots=True)
class Tokens:
    """Token counts of one run, used for `cost_per_run`: input (cached ones included), output,
    and how many of the input tokens the provider reads from its prompt cache."""

    tokens_in: int
    tokens_out: int
    tokens_cached: int = 0


def derived_rule_id(when: Expr) -> str:
    """The id of a bare rule: `r.` + the first 12 hex chars of SHA-256 over its canonical JSON."""
    return "r." + hashlib.sha256(canonical_bytes(to_json(when))).hexdigest()[:12]


def fingerprint_text(digest: bytes) -> str:
    """`"{a}-{b} (sigma-pol/v1)"`: the first 8 digest bytes as two big-endian uint32."""
    a = int.from_bytes(digest[0:4], "big")
    b = int.from_bytes(digest[4:8], "big")
    return f"{a}-{b} ({POLICY_VERSION})"


@dataclass(frozen=True, slots=True)
class Policy:
    """A validated, normalized `sigma-pol/v1` policy.

    `rules` are ordered by id; `digest` is the SHA-256 hex of the RFC 8785 bytes of `to_json()`;
    `fingerprint` is its display form (`"301140696-1054914287 (sigma-pol/v1)"`).
    """

    rules: tuple[Rule, ...]
    rank: tuple[RankKey, ...]
    tokens: Tokens | None
    max_attempts: int
    digest: str = field(init=False)
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        raw = hashlib.sha256(canonical_bytes(self.to_json())).digest()
        object.__setattr__(self, "digest", raw.hex())
        object.__setattr__(self, "fingerprint", fingerprint_text(raw))

    @classmethod
    def from_json(cls, obj: object, schema: Mapping[str, str] | None = None) -> Policy:
        """Validate and normalize a policy document; raise `PolicyError` listing every problem.

        `schema` (attribute name → type, e.g. `catalog.schema`) checks attribute names and types;
        without it only the structure and the literal values are checked.
        """
        from router.core._parse import parse_policy

        return parse_policy(obj, schema)

    def to_json(self) -> dict[str, Any]:
        """The normalized policy document (what the fingerprint is computed over)."""
        doc: dict[str, Any] = {
            "v": POLICY_VERSION,
            "rules": [rule.to_json() for rule in self.rules],
            "rank": [key.to_json() for key in self.rank],
            "fallback": {"max_attempts": self.max_attempts},
        }
        if self.tokens is not None:
            doc["tokens"] = {"in": self.tokens.tokens_in, "out": self.tokens.tokens_out}
        return doc

    def rule_index(self, rule_id: str) -> int:
        """Position of a rule in `rules` (ValueError when absent)."""
        for i, rule in enumerate(self.rules):
            if rule.id == rule_id:
                return i
        raise ValueError(f"no rule {rule_id!r}")

    def uses_cost(self) -> bool:
        """Whether `cost_per_run` is needed (in a rule or a rank key)."""
        return any(k.attr == "cost_per_run" for k in self.rank) or any(
            "cost_per_run" in rule.attributes() for rule in self.rules
        )
