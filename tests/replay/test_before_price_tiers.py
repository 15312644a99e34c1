"""Catalogs and decisions made before entries could carry `price_source`, price tiers and
cached-input prices keep their meaning: the same catalog version, the same policy fingerprint and
the same decision, bit for bit.

`data/before_price_tiers.json` was written by the code of that time: the bundled catalog and the
imports of the LiteLLM and OpenRouter fixtures, the example policies and two cost rules, each
decided without features, for a 1,200-token and for a 300,000-token request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from router.core import Catalog, Policy, RequestFeatures, Trace, decide
from router.services.catalogs import bundled_catalog

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
    assert trace.compact() == recorded["trace"]
    rebuilt = Trace.from_compact(recorded["trace"], policy, old)
    assert rebuilt.ranked == trace.ranked
    if "to_json" in recorded:
        assert trace.to_json() == recorded["to_json"]


def test_the_recording_covers_long_prompts_and_cost_rules() -> None:
    long_prompts = [d for d in DECISIONS if (d["features"] or {}).get("tokens_in") == 300_000]
    assert len(long_prompts) >= 10
    assert any("budget" in d["trace"]["rule_ids"] for d in DECISIONS)
