"""A small recorded ledger to replay, and an independent brute-force evaluator (a naive loop over
the entries, written from the policy language's definition, not from the evaluator)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from router.core import Catalog, Policy, RequestFeatures
from router.services.decisions import DecisionService, NoEntryPassesRecorded

PROVIDERS = ["openai", "anthropic", "google", "mistral", "deepseek"]
REGIONS = ["eu", "us", "apac"]

POLICIES: list[dict[str, Any]] = [
    {
        "v": "sigma-pol/v1",
        "rules": [
            {"id": "residency.eu", "when": ["eq", "region", "eu"]},
            {"id": "quality.floor", "when": ["cmp", "bench", "ge", 0.5]},
        ],
        "rank": [["asc", "cost_per_run"], ["desc", "bench"]],
        "fallback": {"max_attempts": 2},
    },
    {
        "v": "sigma-pol/v1",
        "rules": [
            {"id": "dpa.no_log", "when": ["is", "no_log"]},
            {"id": "dpa.blocked", "when": ["not", ["in", "provider", ["deepseek"]]]},
        ],
        "rank": [["desc", "bench"], ["asc", "cost_per_run"]],
        "tokens": {"in": 1000, "out": 300},
    },
    {
        "v": "sigma-pol/v1",
        "rules": [
            {"id": "budget", "when": ["cmp", "cost_per_run", "le", 0.004]},
            {"id": "tools", "when": ["has", "capabilities", "tools"]},
        ],
        "rank": [["asc", "cost_per_run"]],
    },
    {  # nothing passes: recorded all the same
        "v": "sigma-pol/v1",
        "rules": [{"id": "impossible", "when": ["cmp", "bench", "gt", 5]}],
        "rank": [["asc", "cost_per_run"]],
    },
]

TENANTS = ["acme", "globex", "initech"]


def catalog_document(entries: int = 40, seed: int = 3) -> dict[str, Any]:
    """A deterministic catalog with prices, quality, regions, no_log, capabilities, status."""
    rng = random.Random(seed)
    out = []
    for i in range(entries):
        provider = PROVIDERS[i % len(PROVIDERS)]
        entry: dict[str, Any] = {
            "id": f"{provider}/m{i:03d}@{REGIONS[i % 3]}",
            "model": f"m{i:03d}",
            "provider": provider,
            "region": REGIONS[i % 3],
            "price_in": round(rng.uniform(0.1, 5.0), 3),
            "price_out": round(rng.uniform(0.2, 15.0), 3),
            "no_log": rng.random() < 0.5,
            "capabilities": sorted(rng.sample(["tools", "vision", "json"], rng.randint(0, 2))),
            "status": "active" if rng.random() < 0.9 else "deprecated",
        }
        if rng.random() < 0.85:
            entry["bench"] = round(rng.uniform(0.2, 0.95), 2)
        out.append(entry)
    return {"name": "replay-test", "entries": out, "schema": {"bench": "number"}}


@dataclass(frozen=True)
class Recorded:
    """What the test ledger holds."""

    catalog: Catalog
    policies: list[Policy]
    ids: list[uuid.UUID]
    tenants: dict[uuid.UUID, str]
    policy_of: dict[uuid.UUID, Policy]
    features_of: dict[uuid.UUID, RequestFeatures]
    selected: dict[uuid.UUID, str | None]


async def record_ledger(service: DecisionService, decisions: int = 48) -> Recorded:
    """Record `decisions` decisions over the 4 policies, 3 tenants and 6 request sizes."""
    catalog = Catalog.from_json(catalog_document())
    await service.publish_catalog(catalog)
    policies = [Policy.from_json(doc, catalog.schema) for doc in POLICIES]
    rng = random.Random(11)
    ids: list[uuid.UUID] = []
    tenants: dict[uuid.UUID, str] = {}
    policy_of: dict[uuid.UUID, Policy] = {}
    features_of: dict[uuid.UUID, RequestFeatures] = {}
    selected: dict[uuid.UUID, str | None] = {}
    for i in range(decisions):
        policy = policies[i % len(policies)]
        features = RequestFeatures(rng.choice([200, 800, 3000]), rng.choice([100, 600]))
        tenant = TENANTS[i % len(TENANTS)]
        try:
            recorded = await service.decide(tenant, policy, catalog, features=features)
        except NoEntryPassesRecorded as exc:
            recorded = exc.decision
        ids.append(recorded.decision_id)
        tenants[recorded.decision_id] = tenant
        policy_of[recorded.decision_id] = policy
        features_of[recorded.decision_id] = features
        selected[recorded.decision_id] = recorded.selected
    return Recorded(catalog, policies, ids, tenants, policy_of, features_of, selected)


# -- brute force -------------------------------------------------------------------------------


def _value(entry: dict[str, Any], attr: str, tokens: tuple[int, int] | None) -> Any:
    if attr == "cost_per_run":
        if tokens is None:
            return None
        return (tokens[0] * entry["price_in"] + tokens[1] * entry["price_out"]) / 1e6
    return entry.get(attr)


def _truth(expr: list[Any], entry: dict[str, Any], tokens: tuple[int, int] | None) -> bool | None:
    """Three-valued (None = unknown) value of a policy expression on one entry."""
    op = expr[0]
    if op == "not":
        inner = _truth(expr[1], entry, tokens)
        return None if inner is None else not inner
    value = _value(entry, expr[1], tokens)
    if value is None:
        return None
    if op == "is":
        return value is True
    if op == "eq":
        return bool(value == expr[2])
    if op == "in":
        return bool(value in expr[2])
    if op == "has":
        return bool(expr[2] in value)
    if op == "cmp":
        target = expr[3]
        return bool(
            {
                "lt": value < target,
                "le": value <= target,
                "gt": value > target,
                "ge": value >= target,
                "eq": value == target,
                "ne": value != target,
            }[expr[2]]
        )
    raise AssertionError(f"the brute force does not know {op!r}")


def brute_force_selected(
    catalog_doc: dict[str, Any], policy_doc: dict[str, Any], features: RequestFeatures
) -> str | None:
    """The selected entry id, by a naive loop: every entry, every rule, then a full sort."""
    fixed = policy_doc.get("tokens")
    tokens = (fixed["in"], fixed["out"]) if fixed else (features.tokens_in, features.tokens_out)
    passing = []
    for entry in catalog_doc["entries"]:
        if entry.get("status") != "active":
            continue
        if all(_truth(rule["when"], entry, tokens) is True for rule in policy_doc["rules"]):
            passing.append(entry)
    if not passing:
        return None

    def key(entry: dict[str, Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for direction, attr in policy_doc["rank"]:
            value = _value(entry, attr, tokens)
            if value is None:
                parts.append((1, 0.0))
            else:
                parts.append((0, value if direction == "asc" else -value))
        return (*parts, entry["id"])

    return str(min(passing, key=key)["id"])
