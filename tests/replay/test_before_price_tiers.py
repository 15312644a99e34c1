"""Catalogs and decisions made before entries could carry `price_source`, price tiers and
cached-input prices keep their meaning: the same catalog version, the same policy fingerprint and
the same decision, bit for bit.

`data/before_price_tiers.json` was written by the code of that time: the bundled catalog and the
imports of the LiteLLM and OpenRouter fixtures, the example policies and two cost rules, each
decided without features, for a 1,200-token and for a 300,000-token request.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from router.core import Catalog, Policy, RequestFeatures, Trace, decide, tokens_json
from router.services.catalogs import bundled_catalog
from router.services.replay import ReplayService
from tests.support.service_backends import Backend

DATA = json.loads(
    (Path(__file__).parent / "data" / "before_price_tiers.json").read_text(encoding="utf-8")
)
DECISIONS: list[dict[str, Any]] = DATA["decisions"]


def catalog(name: str) -> Catalog:
    return Catalog.from_json(DATA["catalogs"][name])


@pytest.mark.parametrize("name", sorted(DATA["catalogs"]))
def test_an_old_catalog_keeps_its_version(name: str) -> None:
    assert catalog(name).version == DATA["versions"][name]


def test_the_bundled_catalog_keeps_its_version() -> None:
    assert bundled_catalog().version == DATA["versions"]["bundled"]


def _recorded_form(trace: Trace) -> dict[str, Any]:
    """The trace in the form the recording holds (entries and rules by index, bitmaps in
    base64)."""
    return {
        "evaluator_version": trace.evaluator_version,
        "policy_digest": trace.policy.digest,
        "catalog_version": trace.catalog.version,
        "features": None if trace.features is None else trace.features.to_json(),
        "tokens": tokens_json(trace.tokens),
        "rule_ids": list(trace.rule_ids),
        "failures": [base64.b64encode(bitmap).decode("ascii") for bitmap in trace.failures],
        "ranked": list(trace.ranked),
        "plan": list(trace.plan),
    }


@pytest.mark.parametrize(
    "recorded",
    DECISIONS,
    ids=[f"{d['catalog']}-{i}" for i, d in enumerate(DECISIONS)],
)
def test_an_old_decision_is_reproduced(recorded: dict[str, Any]) -> None:
    old = catalog(recorded["catalog"])
    policy = Policy.from_json(recorded["policy"], old.schema)
    assert policy.fingerprint == recorded["fingerprint"]
    features = recorded["features"]
    trace = decide(policy, old, None if features is None else RequestFeatures(**features))
    assert _recorded_form(trace) == recorded["trace"]
    if "to_json" in recorded:
        assert trace.to_json() == recorded["to_json"]


def test_the_recording_covers_long_prompts_and_cost_rules() -> None:
    long_prompts = [d for d in DECISIONS if (d["features"] or {}).get("tokens_in") == 300_000]
    assert len(long_prompts) >= 10
    assert any("budget" in d["trace"]["rule_ids"] for d in DECISIONS)


TIERED = {
    "name": "tiered",
    "entries": [
        {
            "id": "google/gemini-2.5-pro@unspecified",
            "model": "gemini-2.5-pro",
            "provider": "google",
            "region": "unspecified",
            "price_in": 1.25,
            "price_out": 10,
            "price_cached_in": 0.125,
            "price_source": "priced",
            "price_tiers": [{"above_tokens_in": 200_000, "price_in": 2.5, "price_out": 15}],
            "status": "active",
        },
        {
            "id": "openai/gpt-4.1@unspecified",
            "model": "gpt-4.1",
            "provider": "openai",
            "region": "unspecified",
            "price_in": 2,
            "price_out": 8,
            "price_source": "priced",
            "status": "active",
        },
        {
            "id": "volcengine/deepseek-v3-2@unspecified",
            "model": "deepseek-v3-2",
            "provider": "volcengine",
            "region": "unspecified",
            "price_source": "unknown",
            "status": "active",
        },
    ],
}


async def test_decisions_with_tiers_cached_tokens_and_unknown_prices_replay_exactly(
    backend: Backend,
) -> None:
    tiered = Catalog.from_json(TIERED)
    policy = {"v": "sigma-pol/v1", "rules": [], "fallback": {"max_attempts": 3}}
    requests = [
        RequestFeatures(100_000, 1_000),
        RequestFeatures(300_000, 1_000),
        RequestFeatures(300_000, 1_000, tokens_cached=250_000),
        RequestFeatures(150_000, 500, tokens_cached=140_000),
    ]
    async with backend.service() as service:
        await service.publish_catalog(tiered)
        parsed = Policy.from_json(policy, tiered.schema)
        recorded = [await service.decide("acme", parsed, tiered, features=f) for f in requests]
    winners = [r.trace.entry(r.trace.ranked[0]).id for r in recorded]
    assert winners == [
        "google/gemini-2.5-pro@unspecified",
        "openai/gpt-4.1@unspecified",  # above 200k tokens the long-context price applies
        "google/gemini-2.5-pro@unspecified",  # most of the prompt is cached
        "google/gemini-2.5-pro@unspecified",
    ]
    assert all(r.trace.entry(r.trace.ranked[-1]).get("price_source") == "unknown" for r in recorded)
    async with backend.service() as service:  # a fresh connection, like another process
        report = await ReplayService(service).original(record=False)
        assert report.decisions == 4
        assert report.mismatches == 0, report.examples
        again = await service.decision(recorded[2].decision_id)
    assert again.trace.tokens == recorded[2].trace.tokens
    assert again.trace.tokens is not None
    assert again.trace.tokens.tokens_cached == 250_000
    assert again.trace.ranked == recorded[2].trace.ranked
