"""Bad source files are rejected with the file's name and a JSON pointer into it, every problem
listed, never a silent skip."""

from __future__ import annotations

import math
from typing import Any

import pytest

from router.core import InputError, RouterError
from router.services.catalogs import CatalogImportError
from tests.catalogs.support import chat, import_litellm, import_openrouter


def rejected(document: object) -> CatalogImportError:
    with pytest.raises(CatalogImportError) as caught:
        import_litellm(document, file="prices.json")
    return caught.value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("input_cost_per_token", -1e-06),
        ("input_cost_per_token", math.nan),
        ("input_cost_per_token", math.inf),
        ("input_cost_per_token", "0.000001"),
        ("output_cost_per_token", True),
        ("output_cost_per_token", None),
    ],
)
def test_bad_prices_are_rejected_with_a_pointer(field: str, value: Any) -> None:
    error = rejected({"gpt-4o": chat("openai", **{field: value})})
    assert error.pointer == f"/gpt-4o/{field}"
    assert error.source == "prices.json"
    assert str(error).startswith(
        f"prices.json: /gpt-4o/{field}: expected a non-negative finite number"
    )


def test_pointers_escape_slashes_in_model_keys() -> None:
    error = rejected({"azure/eu/gpt-4o": chat("azure", max_input_tokens=-5)})
    assert error.pointer == "/azure~1eu~1gpt-4o/max_input_tokens"
    assert "non-negative whole number of tokens" in str(error)


@pytest.mark.parametrize("value", [1.5, "128k", True, -1, math.nan, math.inf])
def test_token_limits_must_be_whole_non_negative_numbers(value: Any) -> None:
    assert (
        rejected({"m": chat("openai", max_output_tokens=value)}).pointer == "/m/max_output_tokens"
    )


def test_supports_flags_must_be_booleans() -> None:
    error = rejected({"m": chat("openai", supports_vision="yes")})
    assert error.pointer == "/m/supports_vision"
    assert error.expected == "true or false"


@pytest.mark.parametrize("value", ["2025-13-01", "next year", 20250101, "2025-1-1"])
def test_deprecation_dates_must_be_iso_dates(value: Any) -> None:
    assert rejected({"m": chat("openai", deprecation_date=value)}).pointer == "/m/deprecation_date"


def test_a_chat_entry_needs_a_provider() -> None:
    spec = chat("openai")
    del spec["litellm_provider"]
    assert rejected({"m": spec}).pointer == "/m/litellm_provider"


def test_unknown_types_are_rejected() -> None:
    assert rejected({"m": ["not", "a", "spec"]}).pointer == "/m"
    assert rejected({"m": {"mode": 3}}).pointer == "/m/mode"
    assert rejected({"m": chat("openai", supported_regions="eu-west-1")}).pointer == (
        "/m/supported_regions"
    )
    assert rejected(["a list"]).pointer == ""


def test_every_problem_is_listed_not_only_the_first() -> None:
    error = rejected(
        {
            "a": chat("openai", input_cost_per_token=-1),
            "b": chat("openai", supports_tools="yes"),
            "c": chat("openai", deprecation_date="soon"),
        }
    )
    assert [i.pointer for i in error.issues] == [
        "/a/input_cost_per_token",
        "/b/supports_tools",
        "/c/deprecation_date",
    ]
    assert str(error).count("prices.json: ") == 3


def test_import_errors_are_router_input_errors() -> None:
    error = rejected({"m": chat("openai", input_cost_per_token=-1)})
    assert isinstance(error, InputError)
    assert isinstance(error, RouterError)


def test_skipped_entries_are_not_validated_beyond_their_mode() -> None:
    result = import_litellm({"emb": {"mode": "embedding", "input_cost_per_token": "odd"}})
    assert result.summary.skipped["mode embedding (not chat)"] == 1


def openrouter_model(**changes: Any) -> dict[str, Any]:
    model: dict[str, Any] = {
        "id": "openai/gpt-4o",
        "context_length": 128000,
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "pricing": {"prompt": "0.0000025", "completion": "0.00001"},
        "top_provider": {"max_completion_tokens": 16384, "is_moderated": True},
        "supported_parameters": ["tools"],
    }
    model.update(changes)
    return model


@pytest.mark.parametrize("price", ["-0.5", "abc", "NaN", "Infinity", True, None, ["0"]])
def test_openrouter_bad_prices_are_rejected_with_a_pointer(price: Any) -> None:
    document = {"data": [openrouter_model(pricing={"prompt": price, "completion": "0"})]}
    with pytest.raises(CatalogImportError) as caught:
        import_openrouter(document)
    assert caught.value.pointer == "/data/0/pricing/prompt"
    assert str(caught.value).startswith("models.json: /data/0/pricing/prompt")


def test_openrouter_numeric_prices_are_read_like_strings() -> None:
    document = {"data": [openrouter_model(pricing={"prompt": 2.5e-06, "completion": "0.00001"})]}
    [entry] = import_openrouter(document).catalog.entries
    assert entry.get("price_in") == 2.5


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"id": 7}, "/data/0/id"),
        ({"context_length": -1}, "/data/0/context_length"),
        ({"context_length": math.inf}, "/data/0/context_length"),
        ({"pricing": "free"}, "/data/0/pricing"),
        ({"architecture": {"input_modalities": "text"}}, "/data/0/architecture/input_modalities"),
        ({"top_provider": {"is_moderated": "no"}}, "/data/0/top_provider/is_moderated"),
        ({"supported_parameters": [1, 2]}, "/data/0/supported_parameters"),
        ({"expiration_date": "2026-13-01"}, "/data/0/expiration_date"),
        ({"alias_target": {"name": "x"}}, "/data/0/alias_target"),
        (
            {"benchmarks": {"artificial_analysis": {"intelligence_index": 140}}},
            "/data/0/benchmarks/artificial_analysis/intelligence_index",
        ),
        (
            {"pricing": {"prompt": "0", "completion": "0", "overrides": {"prompt": "1"}}},
            "/data/0/pricing/overrides",
        ),
        (
            {
                "pricing": {
                    "prompt": "0.000001",
                    "completion": "0.000002",
                    "overrides": [{"min_prompt_tokens": 0, "prompt": "0.000002"}],
                }
            },
            "/data/0/pricing/overrides/0/min_prompt_tokens",
        ),
        (
            {
                "pricing": {
                    "prompt": "0.000001",
                    "completion": "0.000002",
                    "overrides": [{"min_prompt_tokens": 200001, "prompt": "cheap"}],
                }
            },
            "/data/0/pricing/overrides/0/prompt",
        ),
    ],
)
def test_openrouter_bad_fields_are_rejected_with_a_pointer(
    changes: dict[str, Any], where: str
) -> None:
    with pytest.raises(CatalogImportError) as caught:
        import_openrouter({"data": [openrouter_model(**changes)]})
    assert caught.value.pointer == where


def test_openrouter_document_needs_a_data_list() -> None:
    with pytest.raises(CatalogImportError) as caught:
        import_openrouter({"models": []})
    assert caught.value.pointer == "/data"


def test_openrouter_model_without_prices_has_an_unknown_price() -> None:
    document = {"data": [openrouter_model(pricing={"request": "0.01"})]}
    [entry] = import_openrouter(document).catalog.entries
    assert entry.get("price_source") == "unknown"
    assert entry.get("price_in") is None


@pytest.mark.parametrize(
    ("tiered", "where"),
    [
        ("flat", "/m/tiered_pricing"),
        ([], "/m/tiered_pricing"),
        ([{"range": [0], "input_cost_per_token": 1e-06}], "/m/tiered_pricing/0"),
        (
            [{"range": [0, 10], "input_cost_per_token": -1, "output_cost_per_token": 1e-06}],
            "/m/tiered_pricing/0/input_cost_per_token",
        ),
        (
            [{"range": [5, 10], "input_cost_per_token": 1e-06, "output_cost_per_token": 1e-06}],
            "/m/tiered_pricing",
        ),
    ],
)
def test_litellm_bad_tiered_pricing_is_rejected_with_a_pointer(tiered: Any, where: str) -> None:
    spec = {"litellm_provider": "dashscope", "mode": "chat", "tiered_pricing": tiered}
    with pytest.raises(CatalogImportError) as caught:
        import_litellm({"m": spec})
    assert caught.value.pointer == where


def test_litellm_tier_prices_must_be_prices() -> None:
    spec = chat("gemini", input_cost_per_token_above_200k_tokens="x")
    with pytest.raises(CatalogImportError) as caught:
        import_litellm({"gemini/m": spec})
    assert caught.value.pointer == "/gemini~1m/input_cost_per_token_above_200k_tokens"
