"""OpenRouter's `provider` routing preferences, derived from the policy and the selected entry.

OpenRouter serves one model from several upstream providers and, unless told otherwise, picks one
and falls back to others. A decision must hold there too: the call says which upstream providers
may serve it (`order`, from the entry's `openrouter_providers`), forbids falling back to any
other (`allow_fallbacks: false`), and, when the policy requires `no_log`, asks for endpoints that
neither collect data nor retain it (`data_collection: "deny"`, `zdr: true`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.core import CatalogEntry, Policy

__all__ = ["ORDER_ATTRIBUTE", "openrouter_preferences", "requires"]

#: The catalog attribute naming the OpenRouter upstream providers that may serve an entry, in
#: order of preference (OpenRouter's provider slugs, e.g. `["anthropic", "amazon-bedrock"]`).
ORDER_ATTRIBUTE = "openrouter_providers"


def requires(policy: Policy, attribute: str) -> bool:
    """Whether every entry that passes `policy` must have the boolean `attribute` true: a rule
    is `["is", attribute]`, or a conjunction (`all`) that contains it."""

    def needs(when: Any) -> bool:
        if when == ["is", attribute] or when == ["eq", attribute, True]:
            return True
        return isinstance(when, list) and when[:1] == ["all"] and any(needs(e) for e in when[1:])

    return any(needs(rule.to_json()["when"]) for rule in policy.rules)


def openrouter_preferences(
    policy: Policy, entry: CatalogEntry, requested: object = None
) -> dict[str, Any]:
    """The `provider` object of a call to OpenRouter for `entry` under `policy`.

    `requested` is the caller's own `provider` object, if any: its other preferences (`sort`,
    `max_price`, `ignore`, …) are kept, but never one that would loosen the decision.
    """
    preferences: dict[str, Any] = dict(requested) if isinstance(requested, Mapping) else {}
    preferences["allow_fallbacks"] = False
    order = entry.get(ORDER_ATTRIBUTE)
    if isinstance(order, list | tuple) and order:
        preferences["order"] = [str(name) for name in order]
    if requires(policy, "no_log"):
        preferences["data_collection"] = "deny"
        preferences["zdr"] = True
    return preferences
