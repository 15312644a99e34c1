"""OpenRouter's `provider` routing preferences, derived from the policy and the selected entry.

OpenRouter serves one model from several upstream providers and, unless told otherwise, picks one
and falls back to others. A decision must hold there too: the call says which upstream providers
may serve it (`order`, from the entry's `openrouter_providers`), forbids falling back to any
other (`allow_fallbacks: false`), never to a provider the policy blocks (`ignore`, from rules
`["nin", "provider", […]]` and `["ne", "provider", …]`: an OpenRouter entry's own provider is
`openrouter`, so without this a blocked provider could still serve the call behind it), and, when
the policy requires `no_log`, asks for endpoints that neither collect data nor retain it
(`data_collection: "deny"`, `zdr: true`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.core import CatalogEntry, Policy

__all__ = ["ORDER_ATTRIBUTE", "blocked_providers", "openrouter_preferences", "requires"]

#: The catalog attribute naming the OpenRouter upstream providers that may serve an entry, in
#: order of preference (OpenRouter's provider slugs, e.g. `["anthropic", "amazon-bedrock"]`).
ORDER_ATTRIBUTE = "openrouter_providers"

#: Catalog provider names whose OpenRouter provider slug differs (the catalog uses LiteLLM's
#: provider names, docs/catalog.md); every other name is OpenRouter's slug as it is.
_OPENROUTER_SLUGS: dict[str, tuple[str, ...]] = {
    "bedrock": ("amazon-bedrock",),
    "vertex_ai": ("google-vertex",),
    "gemini": ("google-ai-studio",),
    "together_ai": ("together",),
    "fireworks_ai": ("fireworks",),
}


def requires(policy: Policy, attribute: str) -> bool:
    """Whether every entry that passes `policy` must have the boolean `attribute` true: a rule
    is `["is", attribute]`, or a conjunction (`all`) that contains it."""

    def needs(when: Any) -> bool:
        if when == ["is", attribute] or when == ["eq", attribute, True]:
            return True
        return isinstance(when, list) and when[:1] == ["all"] and any(needs(e) for e in when[1:])

    return any(needs(rule.to_json()["when"]) for rule in policy.rules)


def blocked_providers(policy: Policy) -> list[str]:
    """OpenRouter slugs of the providers no entry passing `policy` may have: the names of its
    rules `["nin", "provider", [...]]`, `["ne", "provider", name]` and their `not` forms, also
    inside `all`."""

    def names(when: Any) -> list[str]:
        if not isinstance(when, list) or not when:
            return []
        if when[0] == "all":
            return [name for operand in when[1:] for name in names(operand)]
        if when[0] == "nin" and when[1] == "provider" and isinstance(when[2], list):
            return [str(name) for name in when[2]]
        if when[0] == "ne" and when[1] == "provider":
            return [str(when[2])]
        if (
            when[0] == "not"
            and isinstance(when[1], list)
            and when[1][:2]
            in (
                ["in", "provider"],
                ["eq", "provider"],
            )
        ):
            operand = when[1][2]
            return [str(n) for n in operand] if isinstance(operand, list) else [str(operand)]
        return []

    blocked = {name for rule in policy.rules for name in names(rule.to_json()["when"])}
    return sorted({slug for name in blocked for slug in _OPENROUTER_SLUGS.get(name, (name,))})


def openrouter_preferences(
    policy: Policy, entry: CatalogEntry, requested: object = None
) -> dict[str, Any]:
    """The `provider` object of a call to OpenRouter for `entry` under `policy`.

    `requested` is the caller's own `provider` object, if any: its other preferences (`sort`,
    `max_price`, …) are kept, but never one that would loosen the decision; its `ignore` is
    extended with the providers the policy blocks.
    """
    preferences: dict[str, Any] = dict(requested) if isinstance(requested, Mapping) else {}
    preferences["allow_fallbacks"] = False
    order = entry.get(ORDER_ATTRIBUTE)
    if isinstance(order, list | tuple) and order:
        preferences["order"] = [str(name) for name in order]
    blocked = blocked_providers(policy)
    if blocked:
        requested_ignore = preferences.get("ignore")
        own = [str(n) for n in requested_ignore] if isinstance(requested_ignore, list) else []
        preferences["ignore"] = sorted(set(own) | set(blocked))
    if requires(policy, "no_log"):
        preferences["data_collection"] = "deny"
        preferences["zdr"] = True
    return preferences
