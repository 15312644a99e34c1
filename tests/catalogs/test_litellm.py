"""LiteLLM price map → endpoints: one test per mapping rule, skip reasons, regions, duplicates."""

from __future__ import annotations

import datetime as dt

import pytest

from router.services.catalogs import UNSPECIFIED_REGION
from tests.catalogs.support import (
    AS_OF,
    chat,
    import_litellm,
    litellm_fixture,
    only,
    single,
)


def test_per_token_prices_become_usd_per_million_tokens() -> None:
    entry = single(only("gpt-4o", chat("openai", 2.5e-06, 1e-05)))
    assert entry.get("price_in") == 2.5
    assert entry.get("price_out") == 10


def test_float_noise_written_by_the_source_is_rounded_away() -> None:
    entry = single(only("k", chat("novita", 9.499999999999999e-07, 4.0000000000000003e-06)))
    assert entry.get("price_in") == 0.95
    assert entry.get("price_out") == 4


def test_precise_prices_keep_their_significant_digits() -> None:
    entry = single(only("m", chat("morph", 1.41953125e-07, 2.9999900000000002e-06)))
    assert entry.get("price_in") == 0.141953125
    assert entry.get("price_out") == 2.99999


def test_zero_prices_stay_zero() -> None:
    entry = single(only("ollama/llama3", chat("ollama", 0.0, 0)))
    assert (entry.get("price_in"), entry.get("price_out")) == (0, 0)


def test_vertex_pricing_families_collapse_to_vertex_ai() -> None:
    entry = single(only("vertex_ai/claude-sonnet-4-6", chat("vertex_ai-anthropic_models")))
    assert entry.get("provider") == "vertex_ai"
    assert entry.get("model") == "claude-sonnet-4-6"


def test_bedrock_converse_is_bedrock() -> None:
    assert (
        single(only("amazon.nova-pro-v1:0", chat("bedrock_converse"))).get("provider") == "bedrock"
    )


def test_other_providers_keep_the_litellm_name() -> None:
    entry = single(only("fireworks_ai/accounts/fireworks/models/kimi-k2", chat("fireworks_ai")))
    assert entry.get("provider") == "fireworks_ai"
    assert entry.get("model") == "accounts/fireworks/models/kimi-k2"


def test_no_region_in_the_key_means_unspecified() -> None:
    entry = single(only("gpt-4o", chat("openai")))
    assert entry.get("region") == UNSPECIFIED_REGION == "unspecified"
    assert entry.id == "openai/gpt-4o@unspecified"
    assert entry.get("location") is None


@pytest.mark.parametrize(
    ("key", "region"),
    [
        ("azure/eu/gpt-4o", "eu"),
        ("azure/us/gpt-4o", "us"),
        ("azure/us-gov/gpt-4o", "us-gov"),
        ("azure/global/gpt-4o", "global"),
        ("azure/global-standard/gpt-4o", "global"),
    ],
)
def test_azure_data_zone_segments_set_the_region(key: str, region: str) -> None:
    entry = single(only(key, chat("azure")))
    assert entry.get("region") == region
    assert entry.get("model") == "gpt-4o"
    assert entry.id == f"azure/gpt-4o@{region}"


@pytest.mark.parametrize(
    ("location", "region"),
    [
        ("eu-central-1", "eu"),
        ("us-east-1", "us"),
        ("us-gov-west-1", "us-gov"),
        ("ap-northeast-1", "jp"),
        ("ap-southeast-2", "au"),
        ("ap-south-1", "in"),
        ("ap-southeast-3", "apac"),
        ("sa-east-1", "sa"),
        ("ca-central-1", "ca"),
    ],
)
def test_a_cloud_location_segment_sets_location_and_its_region(location: str, region: str) -> None:
    entry = single(only(f"bedrock/{location}/anthropic.claude-v2:1", chat("bedrock")))
    assert entry.get("location") == location
    assert entry.get("region") == region
    assert entry.get("model") == "anthropic.claude-v2:1"
    assert entry.id == f"bedrock/anthropic.claude-v2:1@{location}"


@pytest.mark.parametrize(
    ("prefix", "region"),
    [
        ("eu", "eu"),
        ("us", "us"),
        ("apac", "apac"),
        ("au", "au"),
        ("jp", "jp"),
        ("global", "global"),
    ],
)
def test_bedrock_inference_profile_prefixes_set_the_region(prefix: str, region: str) -> None:
    entry = single(only(f"{prefix}.anthropic.claude-sonnet-4-6", chat("bedrock_converse")))
    assert entry.get("region") == region
    assert entry.get("model") == "anthropic.claude-sonnet-4-6"


def test_dot_prefixes_are_not_regions_outside_bedrock() -> None:
    entry = single(only("eu.some-model", chat("together_ai")))
    assert entry.get("model") == "eu.some-model"
    assert entry.get("region") == UNSPECIFIED_REGION


def test_supported_regions_give_one_endpoint_per_location() -> None:
    catalog = only(
        "vertex_ai/qwen/qwen3-235b-a22b-instruct-2507-maas",
        chat("vertex_ai-qwen_models", supported_regions=["us-south1", "global", "europe-west4"]),
    )
    by_id = {e.id: e for e in catalog.entries}
    assert sorted(by_id) == [
        "vertex_ai/qwen/qwen3-235b-a22b-instruct-2507-maas@europe-west4",
        "vertex_ai/qwen/qwen3-235b-a22b-instruct-2507-maas@global",
        "vertex_ai/qwen/qwen3-235b-a22b-instruct-2507-maas@us-south1",
    ]
    assert (
        by_id["vertex_ai/qwen/qwen3-235b-a22b-instruct-2507-maas@europe-west4"].get("region")
        == "eu"
    )
    assert by_id["vertex_ai/qwen/qwen3-235b-a22b-instruct-2507-maas@global"].get("location") is None


def test_an_unknown_supported_region_is_a_warning_not_an_endpoint() -> None:
    result = import_litellm(
        {"m": chat("vertex_ai", supported_regions=["moon-base1", "us-central1"])}
    )
    assert [e.id for e in result.catalog.entries] == ["vertex_ai/m@us-central1"]
    assert any("moon-base1" in w for w in result.summary.warnings)


def test_the_key_region_wins_over_supported_regions() -> None:
    entry = single(only("azure/eu/gpt-4o", chat("azure", supported_regions=["us-east-1"])))
    assert entry.get("region") == "eu"


def test_supports_flags_become_capabilities() -> None:
    spec = chat(
        "openai",
        supports_function_calling=True,
        supports_vision=True,
        supports_response_schema=True,
        supports_reasoning=True,
        supports_prompt_caching=True,
        supports_pdf_input=True,
        supports_audio_output=False,
    )
    entry = single(only("o3", spec))
    assert entry.get("capabilities") == (
        "json",
        "pdf_input",
        "prompt_caching",
        "reasoning",
        "tools",
        "vision",
    )


def test_no_supports_flags_give_an_empty_capability_list() -> None:
    assert single(only("m", chat("openai"))).get("capabilities") == ()


def test_token_limits_map_to_context_window_and_max_output_tokens() -> None:
    entry = single(only("m", chat("openai", max_input_tokens=128000, max_output_tokens=16384)))
    assert entry.get("context_window") == 128000
    assert entry.get("max_output_tokens") == 16384


def test_missing_token_limits_are_left_out_not_defaulted() -> None:
    entry = single(only("m", chat("openai")))
    assert entry.get("context_window") is None
    assert entry.get("max_output_tokens") is None


@pytest.mark.parametrize(
    ("as_of", "status"),
    [
        (dt.date(2025, 6, 5), "active"),
        (dt.date(2025, 6, 6), "deprecated"),
        (dt.date(2026, 1, 1), "deprecated"),
    ],
)
def test_deprecation_date_on_or_before_as_of_means_deprecated(as_of: dt.date, status: str) -> None:
    entry = single(only("gpt-4-0613", chat("openai", deprecation_date="2025-06-06"), as_of=as_of))
    assert entry.get("status") == status
    assert entry.get("deprecation_date") == "2025-06-06"


def test_no_deprecation_date_means_active() -> None:
    assert single(only("m", chat("openai"))).get("status") == "active"


def test_the_source_key_is_kept_as_upstream_model() -> None:
    entry = single(only("eu.anthropic.claude-sonnet-4-6", chat("bedrock_converse")))
    assert entry.get("upstream_model") == "eu.anthropic.claude-sonnet-4-6"


def test_skipped_entries_are_counted_by_reason() -> None:
    summary = import_litellm(litellm_fixture()).summary
    assert dict(summary.skipped) == {
        "sample_spec (the file's own schema example)": 1,
        "alias (alias_of: the target is imported, naming the alias)": 1,
        "no mode": 1,
        "mode embedding (not chat)": 1,
        "mode audio_speech (not chat)": 1,
        "mode responses (not chat)": 1,
        "chat without a per-token price (no input_cost_per_token / output_cost_per_token)": 1,
    }


def test_the_fixture_imports_its_chat_endpoints_with_regions() -> None:
    result = import_litellm(litellm_fixture())
    assert result.summary.imported == len(result.catalog.entries) == 16
    assert dict(result.summary.by_region) == {
        "unspecified": 8,
        "eu": 3,
        "global": 3,
        "jp": 1,
        "us": 1,
    }
    assert result.summary.by_provider["bedrock"] == 4


def test_identical_duplicates_merge_and_are_counted() -> None:
    result = import_litellm(litellm_fixture())
    assert result.summary.merged_identical == 1
    entry = result.catalog["azure/gpt-4o-mini@global"]
    assert entry.get("upstream_model") == "azure/global-standard/gpt-4o-mini"


def test_differing_duplicates_keep_the_first_key_and_warn() -> None:
    result = import_litellm(litellm_fixture())
    entry = result.catalog["deepseek/deepseek-chat@unspecified"]
    assert entry.get("upstream_model") == "deepseek-chat"
    [warning] = [w for w in result.summary.warnings if "duplicate id" in w]
    assert "deepseek/deepseek-chat@unspecified" in warning
    assert "dropped 'deepseek/deepseek-chat'" in warning
    assert "prompt_caching" in warning


def test_duplicate_resolution_does_not_depend_on_key_order() -> None:
    document = litellm_fixture()
    reversed_document = dict(reversed(list(document.items())))
    assert (
        import_litellm(document).catalog.version
        == import_litellm(reversed_document).catalog.version
    )


def test_same_inputs_give_the_same_version() -> None:
    first = import_litellm(litellm_fixture()).catalog
    second = import_litellm(litellm_fixture()).catalog
    assert first.version == second.version
    assert first.to_json() == second.to_json()


def test_provenance_names_the_source_file_digest_without_timestamps() -> None:
    catalog = import_litellm(litellm_fixture(), file="prices.json").catalog
    tag = "litellm:" + "ab" * 6
    assert catalog.metadata["provenance"] == {"default": tag, "overrides": {}}
    assert catalog.metadata["sources"] == {
        tag: {"kind": "litellm", "file": "prices.json", "sha256": "ab" * 32}
    }


def test_as_of_changes_status_only_where_a_date_passes() -> None:
    early = import_litellm(litellm_fixture(), as_of=dt.date(2025, 1, 1)).catalog
    late = import_litellm(litellm_fixture(), as_of=AS_OF).catalog
    changed = [e.id for e in early.entries if e.get("status") != late[e.id].get("status")]
    assert changed == ["openai/gpt-4-0613@unspecified"]


def test_path_segments_that_are_not_locations_stay_in_the_model() -> None:
    entry = single(
        only("bedrock/invoke/anthropic.claude-3-5-sonnet-20240620-v1:0", chat("bedrock"))
    )
    assert entry.get("model") == "invoke/anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert entry.get("region") == UNSPECIFIED_REGION


def test_model_names_may_contain_at_signs_the_region_follows_the_last() -> None:
    entry = single(only("vertex_ai/claude-opus-4-7@default", chat("vertex_ai-anthropic_models")))
    assert entry.id == "vertex_ai/claude-opus-4-7@default@unspecified"
    assert entry.id.rsplit("@", 1) == ["vertex_ai/claude-opus-4-7@default", "unspecified"]
