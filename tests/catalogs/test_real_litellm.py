"""The real LiteLLM price maps of two releases nine months apart (tests/catalogs/data/real):
exact prices, tiers, prices that say what they are, one vocabulary, aliases; and the example
policies on the real imports with the sourced overlay of public facts."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from router.core import Catalog, Policy, RequestFeatures, Tokens, Trace, cost_of, decide, evaluate
from router.services.catalogs import (
    BUNDLED_POLICIES,
    bundled_policy_document,
    import_litellm_document,
    import_openrouter_document,
    load_overlay,
)
from router.services.catalogs._imports import Source
from tests.catalogs.support import DATA, OPENROUTER, ROOT

DOCS = ROOT / "docs" / "catalog.md"
EU_OPENROUTER = ROOT / "docs" / "examples" / "enterprise-eu-openrouter.json"

RELEASES = ("1.80.0", "1.110.2")
AS_OF = dt.date(2026, 12, 7)


@cache
def real_bytes(release: str) -> bytes:
    """The unmodified price map of a LiteLLM release."""
    return gzip.decompress((DATA / "real" / f"litellm-{release}.json.gz").read_bytes())


@cache
def raw(release: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(real_bytes(release))
    return document


@cache
def imported(release: str) -> Catalog:
    data = real_bytes(release)
    source = Source.of_bytes("litellm", "model_prices_and_context_window.json", data)
    return import_litellm_document(json.loads(data), source, as_of=AS_OF).catalog


def per_million(value: float) -> float:
    """Independent reading: the literal the file wrote, shifted 6 places, 10 significant digits."""
    return float(format(Decimal(repr(value)).scaleb(6), ".10g"))


@pytest.mark.parametrize("release", RELEASES)
def test_every_price_is_the_files_price(release: str) -> None:
    spec_of = raw(release)
    checked = 0
    for entry in imported(release):
        spec = spec_of[str(entry.get("upstream_model"))]
        if entry.get("price_source") == "unknown":
            assert "price_in" not in entry.attributes
            assert spec["input_cost_per_token"] == 0 == spec["output_cost_per_token"]
            continue
        if "input_cost_per_token" in spec:
            assert entry.get("price_in") == per_million(spec["input_cost_per_token"])
            assert entry.get("price_out") == per_million(spec["output_cost_per_token"])
        else:  # tiered only: the base prices are those of the range starting at 0
            [first] = [t for t in spec["tiered_pricing"] if t["range"][0] == 0]
            assert entry.get("price_in") == per_million(first["input_cost_per_token"])
        if "cache_read_input_token_cost" in spec:
            assert entry.get("price_cached_in") == per_million(spec["cache_read_input_token_cost"])
        for tier in entry.tiers:
            key = f"input_cost_per_token_above_{tier.above_tokens_in // 1000}k_tokens"
            if key in spec and tier.price_in is not None:
                assert tier.price_in == per_million(spec[key])
        checked += 1
    assert checked > 1000


def test_a_300k_token_request_costs_the_long_context_price() -> None:
    spec = raw("1.110.2")["gemini/gemini-2.5-pro"]
    entry = imported("1.110.2")["gemini/gemini-2.5-pro@unspecified"]
    [tier] = entry.tiers
    assert tier.above_tokens_in == 200_000
    long_in = per_million(spec["input_cost_per_token_above_200k_tokens"])
    long_out = per_million(spec["output_cost_per_token_above_200k_tokens"])
    assert (long_in, long_out) == (2.5, 15)
    assert cost_of(entry, Tokens(300_000, 2_000)) == (300_000 * long_in + 2_000 * long_out) / 1e6
    assert cost_of(entry, Tokens(150_000, 2_000)) == (150_000 * 1.25 + 2_000 * 10) / 1e6


def test_tiered_only_models_are_imported() -> None:
    catalog = imported("1.110.2")
    entry = catalog["dashscope/qwen-flash@unspecified"]
    assert (entry.get("price_in"), entry.get("price_out")) == (0.05, 0.4)
    assert [t.to_json() for t in entry.tiers] == [
        {"above_tokens_in": 256_000, "price_in": 0.25, "price_out": 2}
    ]
    tiered_only = [k for k, v in raw("1.110.2").items() if _tiered_only_chat(v)]
    assert len(tiered_only) == 49
    assert all(any(e.get("upstream_model") == k for e in catalog) for k in tiered_only)


def _tiered_only_chat(spec: Any) -> bool:
    return (
        isinstance(spec, dict)
        and spec.get("mode") == "chat"
        and "tiered_pricing" in spec
        and "input_cost_per_token" not in spec
    )


def test_audio_only_chat_entries_are_not_chat_endpoints() -> None:
    audio_only = [
        k
        for k, v in raw("1.110.2").items()
        if isinstance(v, dict)
        and v.get("mode") == "chat"
        and v.get("supported_output_modalities") == ["audio"]
    ]
    assert len(audio_only) == 8
    upstream = {e.get("upstream_model") for e in imported("1.110.2")}
    assert upstream.isdisjoint(audio_only)


def test_prices_say_what_they_are() -> None:
    catalog = imported("1.110.2")
    by_id = {e.id: e for e in catalog}
    assert by_id["volcengine/deepseek-v3-2-251201@unspecified"].get("price_source") == "unknown"
    local = by_id["ollama/llama3@unspecified"]
    assert (local.get("price_source"), local.get("hosting")) == ("free", "local")
    # the source cites its pricing page for this 0: free, not unknown
    assert by_id["zai/glm-4.5-flash@unspecified"].get("price_source") == "free"
    assert by_id["opencode_go/beam-free@unspecified"].get("variant") == "free"
    assert by_id["openai/gpt-4.1@unspecified"].get("price_source") == "priced"


def test_cheapest_for_tools_and_long_context_is_a_priced_entry() -> None:
    catalog = imported("1.110.2")
    policy = Policy.from_json(
        {
            "v": "sigma-pol/v1",
            "rules": [
                {"id": "tools", "when": ["has", "capabilities", "tools"]},
                {"id": "context", "when": ["cmp", "context_window", "ge", 128_000]},
                {"id": "no_local", "when": ["ne", "hosting", "local"]},
                {"id": "no_free_variant", "when": ["ne", "variant", "free"]},
                {"id": "priced", "when": ["eq", "price_source", "priced"]},
            ],
        },
        catalog.schema,
    )
    trace = evaluate(policy, catalog, RequestFeatures(2_000, 500))
    winner = trace.entry(trace.ranked[0])
    assert winner.get("price_source") == "priced"
    assert float(winner.get("price_in") or 0) > 0
    # without the exclusions an unknown price still never wins, it only ranks last
    bare = Policy.from_json(
        {"v": "sigma-pol/v1", "rules": policy.to_json()["rules"][:2]}, catalog.schema
    )
    ranked = decide(bare, catalog, RequestFeatures(2_000, 500)).ranked
    sources = [catalog.entries[i].get("price_source") for i in ranked]
    assert "unknown" in sources
    assert sources.index("unknown") == len(sources) - sources.count("unknown")


def test_one_vocabulary_with_openrouter() -> None:
    by_id = {e.id: e for e in imported("1.110.2")}
    assert by_id["azure/gpt-4o@unspecified"].get("vendor") == "openai"
    assert by_id["gemini/gemini-2.5-pro@unspecified"].get("vendor") == "google"
    bedrock_claude = [
        e for e in by_id.values() if str(e.get("model")).startswith("anthropic.claude")
    ]
    assert bedrock_claude
    assert all(e.get("vendor") == "anthropic" for e in bedrock_claude)
    assert "pdf_input" in (by_id["openai/gpt-4.1@unspecified"].get("capabilities") or ())


def test_an_alias_names_its_target_and_a_vendor_blocklist_excludes_it() -> None:
    aliases = {k: v["alias_of"] for k, v in raw("1.110.2").items() if "alias_of" in v}
    catalog = imported("1.110.2")
    named = [e for e in catalog if "alias" in e.attributes]
    assert named
    for entry in named:
        # the alias's target key, or a key merged with it (`deepseek/x` and `x` are one entry)
        target = aliases[str(entry.get("alias"))]
        assert target.rsplit("/", 1)[-1] == str(entry.get("upstream_model")).rsplit("/", 1)[-1]
    policy = Policy.from_json(
        {"v": "sigma-pol/v1", "rules": [["nin", "vendor", ["anthropic", "openai"]]]},
        catalog.schema,
    )
    passing = {catalog.entries[i].id for i in decide(policy, catalog, RequestFeatures(1, 1)).ranked}
    blocked = [e for e in named if e.get("vendor") in ("anthropic", "openai")]
    assert blocked
    assert not passing.intersection(e.id for e in blocked)


@pytest.mark.parametrize("release", RELEASES)
def test_deprecation_dates_set_the_status(release: str) -> None:
    for entry in imported(release):
        date = entry.get("deprecation_date")
        expected = "deprecated" if date is not None and str(date) <= AS_OF.isoformat() else "active"
        assert entry.get("status") == expected


FACTS = Path(__file__).resolve().parents[2] / "router" / "data" / "overlays" / "public-facts.yaml"


REAL_OPENROUTER = DATA / "real" / "openrouter-models-2026-01-05.json.gz"


@cache
def with_facts(kind: str) -> Catalog:
    """A catalog with the public-facts overlay: LiteLLM 1.110.2 (`litellm`), the test OpenRouter
    listing with its ZDR list and EU listing (`openrouter`), or the real OpenRouter listing of
    2026-01-05 alone (`openrouter-real`: no ZDR list or EU listing of that day exists here)."""
    overlay = load_overlay(FACTS)
    if kind == "openrouter-real":
        data = gzip.decompress(REAL_OPENROUTER.read_bytes())
        source = Source.of_bytes("openrouter", "models.json", data)
        return import_openrouter_document(
            json.loads(data), source, as_of=AS_OF, overlays=[overlay]
        ).catalog
    if kind == "openrouter":
        document = json.loads(OPENROUTER.read_bytes())
        source = Source.of_bytes("openrouter", "models.json", OPENROUTER.read_bytes())
        facts = {
            name: (
                json.loads(path.read_bytes()),
                Source.of_bytes(kind, path.name, path.read_bytes()),
            )
            for name, kind, path in (
                ("zdr", "openrouter_zdr", DATA / "openrouter-zdr.json"),
                ("eu", "openrouter_eu", DATA / "openrouter-eu.json"),
            )
        }
        return import_openrouter_document(
            document, source, as_of=AS_OF, overlays=[overlay], **facts
        ).catalog
    data = real_bytes("1.110.2")
    source = Source.of_bytes("litellm", "model_prices_and_context_window.json", data)
    return import_litellm_document(
        json.loads(data), source, as_of=AS_OF, overlays=[overlay]
    ).catalog


def example(name: str, catalog: Catalog) -> Trace:
    return decide(Policy.from_json(bundled_policy_document(name), catalog.schema), catalog)


def test_every_overlay_value_names_its_source() -> None:
    catalog = with_facts("litellm")
    scored = [e for e in catalog if "bench_intelligence" in e.attributes]
    assert len(scored) > 100
    for entry in scored:
        assert str(entry.get("bench_intelligence_source")).startswith("https://")
        assert entry.get("bench_intelligence_as_of") == "2026-12-07"
    assert catalog.metadata["sources"]["overlay:public-facts"]["as_of"] == "2026-12-07"
    # every rule of the overlay names its page: no value without a source
    assert all(rule.source is not None for rule in load_overlay(FACTS).rules)


def test_bedrock_models_its_abuse_detection_retains_are_not_no_log() -> None:
    catalog = with_facts("litellm")
    assert catalog["bedrock/google.gemma-3-4b-it@unspecified"].get("no_log") is True
    for retained in ("bedrock/openai.gpt-6-sol@us", "bedrock/anthropic.claude-fable-5@eu"):
        assert catalog[retained].get("no_log") is False, retained
        assert str(catalog[retained].get("no_log_source")).endswith("/abuse-detection.html")
    assert catalog["bedrock_mantle/openai.gpt-oss-120b@unspecified"].get("no_log") is True


def test_the_example_policies_pick_sensible_winners_on_the_real_litellm_map() -> None:
    catalog = with_facts("litellm")
    winners = {name: example(name, catalog) for name in BUNDLED_POLICIES}
    assert selected_id(winners["enterprise-eu"]) == "mistral/magistral-medium-latest@eu"
    for name, floor in (("free-tier", 0.5), ("vip", 0.8)):
        entry = winners[name].entry(winners[name].ranked[0])
        assert float(entry.get("bench_intelligence") or 0) >= floor
        assert entry.get("price_source") == "priced"
    regulated = winners["regulated"].entry(winners["regulated"].ranked[0])
    assert regulated.get("no_log") is True
    assert regulated.get("no_log_source") == (
        "https://docs.aws.amazon.com/bedrock/latest/userguide/data-retention.html"
    )
    assert regulated.get("no_log_as_of") == "2026-12-07"
    assert "tools" in (regulated.get("capabilities") or ())


def test_the_example_policies_pick_sensible_winners_on_the_openrouter_listing() -> None:
    catalog = with_facts("openrouter")
    for name in ("free-tier", "vip"):
        assert selected_id(example(name, catalog)) == (
            "openrouter/deepseek/deepseek-r1-0528@unspecified"
        )
    # no_log comes from OpenRouter's ZDR list and is enforced there at request time
    regulated = example("regulated", catalog)
    winner = regulated.entry(regulated.ranked[0])
    assert winner.id == "openrouter/openai/gpt-4o@unspecified"
    assert winner.get("no_log_source") == "https://openrouter.ai/api/v1/endpoints/zdr"
    assert winner.get("zdr_providers") == ("azure",)
    # EU entries exist (OpenRouter's EU listing), but OpenRouter is not an approved provider of
    # the enterprise-eu contract: the trace says so
    eu = example("enterprise-eu", catalog)
    assert eu.selected is None
    assert 'provider = "openrouter"' in eu.explain_removal(0)
    approved = decide(Policy.from_json(read_example(EU_OPENROUTER), catalog.schema), catalog)
    assert selected_id(approved) == "openrouter/anthropic/claude-sonnet-4.5@eu"


def read_example(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def winners_table() -> dict[str, tuple[str, ...]]:
    """The winners table of docs/catalog.md: policy → (LiteLLM cell, test OpenRouter listing
    cell, real OpenRouter listing cell)."""
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("<!-- winners -->", 1)[1].split("\n\n", 1)[0]
    rows: dict[str, tuple[str, ...]] = {}
    for line in table.strip().splitlines()[2:]:
        policy, *cells = (cell.strip() for cell in line.strip("|").split("|"))
        assert len(cells) == 3, line
        rows[policy.strip("`")] = tuple(cells)
    return rows


def documented(cell: str) -> str | None:
    """The entry id a table cell names first (in backticks), or None for "none"."""
    if cell.startswith("none"):
        return None
    return cell.split("`")[1]


def test_the_winners_table_in_the_docs_is_what_the_policies_pick() -> None:
    catalogs = (with_facts("litellm"), with_facts("openrouter"), with_facts("openrouter-real"))
    policies = {name: bundled_policy_document(name) for name in BUNDLED_POLICIES}
    policies["docs/examples/enterprise-eu-openrouter.json"] = read_example(EU_OPENROUTER)
    table = winners_table()
    assert set(table) == set(policies)
    for name, document in policies.items():
        for catalog, cell in zip(catalogs, table[name], strict=True):
            trace = decide(Policy.from_json(document, catalog.schema), catalog)
            picked = None if trace.selected is None else trace.entry(trace.selected).id
            assert picked == documented(cell), (name, catalog.name)


def selected_id(trace: Trace) -> str:
    assert trace.selected is not None
    return trace.entry(trace.selected).id
