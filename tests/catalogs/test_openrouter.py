"""OpenRouter `/api/v1/models` → endpoints: prices, limits, capabilities, free/variable prices."""

from __future__ import annotations

import json
from typing import Any

from router.core import CatalogEntry
from tests.catalogs.support import OPENROUTER, import_openrouter


def fixture() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENROUTER.read_text(encoding="utf-8"))
    return document


def entry(model_id: str) -> CatalogEntry:
    return import_openrouter(fixture()).catalog[f"openrouter/{model_id}@unspecified"]


def test_models_become_openrouter_endpoints_with_unspecified_region() -> None:
    gpt = entry("openai/gpt-4o")
    assert gpt.get("provider") == "openrouter"
    assert gpt.get("model") == gpt.get("upstream_model") == "openai/gpt-4o"
    assert gpt.get("region") == "unspecified"
    assert gpt.get("vendor") == "openai"


def test_price_strings_become_usd_per_million_tokens() -> None:
    gpt = entry("openai/gpt-4o")
    assert (gpt.get("price_in"), gpt.get("price_out")) == (2.5, 10)
    r1 = entry("deepseek/deepseek-r1-0528")
    assert (r1.get("price_in"), r1.get("price_out")) == (0.4, 1.75)


def test_zero_prices_are_free_endpoints() -> None:
    free = entry("meta-llama/llama-3.3-70b-instruct:free")
    assert (free.get("price_in"), free.get("price_out")) == (0, 0)


def test_variable_prices_are_skipped_with_a_reason() -> None:
    result = import_openrouter(fixture())
    assert "openrouter/openrouter/auto@unspecified" not in result.catalog
    assert result.summary.skipped['variable price ("-1": decided per request)'] == 1


def test_models_without_text_output_are_skipped() -> None:
    result = import_openrouter(fixture())
    assert result.summary.skipped["no text output (output_modalities: image)"] == 1
    assert result.summary.imported == 11


def test_context_length_and_top_provider_limits() -> None:
    gpt = entry("openai/gpt-4o")
    assert gpt.get("context_window") == 128000
    assert gpt.get("max_output_tokens") == 16384
    assert gpt.get("moderated") is True


def test_a_null_max_completion_tokens_is_left_out() -> None:
    assert entry("meta-llama/llama-3.3-70b-instruct:free").get("max_output_tokens") is None


def test_supported_parameters_and_input_modalities_become_capabilities() -> None:
    assert entry("openai/gpt-4o").get("capabilities") == (
        "json",
        "pdf_input",
        "prompt_caching",
        "tool_choice",
        "tools",
        "vision",
        "web_search",
    )
    assert entry("deepseek/deepseek-r1-0528").get("capabilities") == ("reasoning",)


def test_same_response_gives_the_same_version() -> None:
    assert (
        import_openrouter(fixture()).catalog.version == import_openrouter(fixture()).catalog.version
    )
