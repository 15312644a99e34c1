"""One vocabulary across importers on the OpenRouter listing: aliases resolved to their target's
vendor and model, canonical vendors and capabilities, variants, tiers from `pricing.overrides`,
expiration dates; and the health report of `catalog import`."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from click.testing import CliRunner

from router.core import Policy, RequestFeatures, Tokens, cost_of, decide
from router.services.catalogs import canonical_vendor, vendor_of_model
from tests.catalogs.support import OPENROUTER, import_openrouter
from unhardcoded.cli import main


def listing() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENROUTER.read_text(encoding="utf-8"))
    return document


def entry(model: str, as_of: dt.date = dt.date(2026, 1, 1)) -> Any:
    return import_openrouter(listing(), as_of=as_of).catalog[f"openrouter/{model}@unspecified"]


def test_a_vendor_blocklist_excludes_every_alias_of_that_vendor() -> None:
    catalog = import_openrouter(listing()).catalog
    aliases = [e for e in catalog if "alias" in e.attributes]
    assert {str(e.get("alias")) for e in aliases} == {
        "~anthropic/claude-sonnet-latest",
        "~openai/gpt-latest",
        "~x-ai/grok-latest",
    }
    policy = Policy.from_json(
        {"v": "sigma-pol/v1", "rules": [["nin", "vendor", ["anthropic", "openai", "xai"]]]},
        catalog.schema,
    )
    passing = {catalog.entries[i].id for i in decide(policy, catalog, RequestFeatures(1, 1)).ranked}
    assert passing
    assert not passing.intersection(e.id for e in aliases)
    assert all(not str(catalog[i].get("model")).startswith("~") for i in passing)


def test_an_alias_resolves_to_its_targets_vendor_and_model() -> None:
    grok = entry("x-ai/grok-4")
    assert (grok.get("vendor"), grok.get("model"), grok.get("alias")) == (
        "xai",
        "x-ai/grok-4",
        "~x-ai/grok-latest",
    )
    # a listed target names its alias; the alias adds no second endpoint
    sonnet = entry("anthropic/claude-sonnet-4.5")
    assert sonnet.get("alias") == "~anthropic/claude-sonnet-latest"
    assert sonnet.get("price_in") == 3


@pytest.mark.parametrize(
    ("spelling", "vendor"),
    [("x-ai", "xai"), ("xai", "xai"), ("mistralai", "mistral"), ("meta-llama", "meta"),
     ("gemini", "google"), ("moonshotai", "moonshot"), ("z-ai", "zai")],
)  # fmt: skip
def test_vendor_spellings_are_canonical(spelling: str, vendor: str) -> None:
    assert canonical_vendor(spelling) == vendor


@pytest.mark.parametrize(
    ("model", "vendor"),
    [("anthropic.claude-sonnet-4-5", "anthropic"), ("gpt-4.1", "openai"), ("o3-mini", "openai"),
     ("meta-llama/Llama-3.3-70B", "meta"), ("gemini-2.5-pro", "google"), ("grok-4", "xai"),
     ("mixtral-8x7b", "mistral"), ("some-unknown-model", None)],
)  # fmt: skip
def test_a_hosted_models_vendor_comes_from_its_name(model: str, vendor: str | None) -> None:
    assert vendor_of_model(model) == vendor


def test_capabilities_use_the_canonical_names() -> None:
    caps = entry("google/gemini-2.5-pro").get("capabilities")
    assert {"pdf_input", "audio_input", "video_input", "vision", "prompt_caching"} <= set(caps)
    assert "audio_output" in entry("openai/gpt-4o-audio-preview").get("capabilities")


def test_variants_and_free_prices() -> None:
    free = entry("meta-llama/llama-3.3-70b-instruct:free")
    assert (free.get("variant"), free.get("price_source")) == ("free", "free")
    batch = entry("mistralai/mistral-large-2512:batch")
    assert (batch.get("variant"), batch.get("price_source")) == ("batch", "priced")
    assert entry("openai/gpt-4o").get("variant") == "standard"


def test_prompt_size_overrides_become_tiers() -> None:
    gemini = entry("google/gemini-2.5-pro")
    assert [t.to_json() for t in gemini.tiers] == [
        {"above_tokens_in": 200_000, "price_in": 2.5, "price_out": 15, "price_cached_in": 0.25}
    ]
    assert cost_of(gemini, Tokens(300_000, 1_000)) == (300_000 * 2.5 + 1_000 * 15) / 1e6
    assert cost_of(gemini, Tokens(200_000, 1_000)) == (200_000 * 1.25 + 1_000 * 10) / 1e6


def test_a_time_window_price_is_budgeted_at_the_dearest_window() -> None:
    deepseek = entry("deepseek/deepseek-v3.2")
    assert (deepseek.get("price_in"), deepseek.get("price_out")) == (0.56, 0.84)
    assert deepseek.get("time_of_day_pricing") is True


def test_expiration_dates_are_kept_and_set_the_status() -> None:
    assert entry("google/gemini-2.5-pro").get("expiration_date") == "2026-12-01"
    assert entry("google/gemini-2.5-pro").get("status") == "active"
    assert entry("google/gemini-2.5-pro", dt.date(2026, 12, 1)).get("status") == "deprecated"


def test_the_listings_benchmark_index_is_kept_as_published() -> None:
    assert entry("google/gemini-2.5-pro").get("aa_intelligence_index") == 60.3
    assert entry("openai/gpt-4o").get("aa_intelligence_index") is None


def test_catalog_import_prints_the_health_report() -> None:
    args = ["catalog", "import", "openrouter", str(OPENROUTER), "--as-of", "2026-01-01"]
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "health of 11 entries:" in text.stderr
    assert "1  batch variants (variant batch): openrouter/mistralai/" in text.stderr
    report = json.loads(CliRunner().invoke(main, [*args, "--json", "--out", "-"]).stderr)
    health = report["health"]
    assert health["counts"]["aliases"] == 3
    assert health["counts"]["without_region"] == 11
    assert health["findings"]["free_variant"] == [
        "openrouter/meta-llama/llama-3.3-70b-instruct:free@unspecified"
    ]
    assert health["variants"] == {"batch": 1, "free": 1}
    assert report["summary"]["imported"] == 11
