"""Prices that say what they are: an unknown price never wins on cost, price tiers and cached
input give the true cost of a run, and the catalog digest covers the tiers."""

from __future__ import annotations

from typing import Any

import pytest

from router.core import (
    Catalog,
    CatalogError,
    Policy,
    RequestError,
    RequestFeatures,
    Tokens,
    Trace,
    cost_of,
    decide,
    evaluate,
)

LONG_CONTEXT = {
    "id": "google/gemini-2.5-pro@unspecified",
    "model": "gemini-2.5-pro",
    "provider": "google",
    "region": "unspecified",
    "price_in": 1.25,
    "price_out": 10,
    "price_cached_in": 0.125,
    "price_source": "priced",
    "price_tiers": [
        {"above_tokens_in": 200_000, "price_in": 2.5, "price_out": 15, "price_cached_in": 0.25}
    ],
    "status": "active",
}
FLAT = {
    "id": "openai/gpt-4.1@unspecified",
    "model": "gpt-4.1",
    "provider": "openai",
    "region": "unspecified",
    "price_in": 2,
    "price_out": 8,
    "status": "active",
}
UNPRICED = {
    "id": "volcengine/deepseek-v3-2@unspecified",
    "model": "deepseek-v3-2",
    "provider": "volcengine",
    "region": "unspecified",
    "price_source": "unknown",
    "status": "active",
}
FREE = {
    "id": "ollama/llama3@unspecified",
    "model": "llama3",
    "provider": "ollama",
    "region": "unspecified",
    "price_in": 0,
    "price_out": 0,
    "price_source": "free",
    "status": "active",
}


def catalog(*entries: dict[str, Any]) -> Catalog:
    return Catalog.from_json({"name": "pricing", "entries": list(entries)})


def policy(cat: Catalog, *rules: Any, rank: Any = None) -> Policy:
    document: dict[str, Any] = {"v": "sigma-pol/v1", "rules": list(rules)}
    if rank is not None:
        document["rank"] = rank
    return Policy.from_json(document, cat.schema)


def selected(trace: Trace) -> str:
    assert trace.selected is not None
    return trace.entry(trace.selected).id


def test_an_unpriced_entry_never_wins_on_cost() -> None:
    cat = catalog(UNPRICED, FLAT)
    trace = evaluate(policy(cat), cat, RequestFeatures(1000, 100))
    assert selected(trace) == FLAT["id"]
    assert [trace.entry(i).id for i in trace.ranked] == [FLAT["id"], UNPRICED["id"]]
    ranked = trace.to_json()["ranked"]
    assert ranked[1]["keys"] == {"cost_per_run": None}
    assert ranked[1]["pricing"]["price_source"] == "unknown"
    assert "(price unknown)" in trace.why_selected()


def test_an_unpriced_entry_ranks_after_every_priced_one_even_descending() -> None:
    cat = catalog(UNPRICED, FLAT, FREE)
    trace = evaluate(policy(cat, rank=[["desc", "cost_per_run"]]), cat, RequestFeatures(10, 10))
    assert trace.entry(trace.ranked[-1]).id == UNPRICED["id"]


@pytest.mark.parametrize(
    "rule",
    [
        ["cmp", "cost_per_run", "le", 1.0],
        ["not", ["cmp", "cost_per_run", "gt", 1.0]],
        ["cmp", "cost_per_run", "ge", 0],
        ["any", ["cmp", "cost_per_run", "lt", 0.001], ["not", ["cmp", "cost_per_run", "ge", 0]]],
    ],
)
def test_every_cost_rule_fails_closed_on_an_unknown_price(rule: Any) -> None:
    cat = catalog(UNPRICED, FLAT)
    trace = decide(policy(cat, {"id": "budget", "when": rule}), cat, RequestFeatures(1000, 100))
    unpriced = cat.index_of(UNPRICED["id"])
    assert unpriced not in trace.ranked
    [failure] = trace.failures_of(unpriced)
    assert failure.outcome == "unknown"
    assert failure.observed["cost_per_run"] is None
    assert failure.observed["price_source"] == "unknown"
    assert 'price_source = "unknown"' in trace.explain_removal(unpriced)


def test_a_300k_token_request_costs_the_long_context_price() -> None:
    cat = catalog(LONG_CONTEXT, FLAT)
    entry = cat[LONG_CONTEXT["id"]]
    assert cost_of(entry, Tokens(300_000, 1_000)) == (300_000 * 2.5 + 1_000 * 15) / 1e6
    assert cost_of(entry, Tokens(200_000, 1_000)) == (200_000 * 1.25 + 1_000 * 10) / 1e6
    trace = evaluate(policy(cat), cat, RequestFeatures(300_000, 1_000))
    index = cat.index_of(LONG_CONTEXT["id"])
    assert trace.sort_keys(index) == (0.765,)
    assert trace.pricing(index) == {
        "price_source": "priced",
        "tier": "above 200,000 input tokens",
        "prices": {"price_in": 2.5, "price_out": 15, "price_cached_in": 0.25},
    }
    # at 300k tokens the flat-priced entry is cheaper; at 100k the long-context model is
    assert selected(trace) == FLAT["id"]
    assert "(above 200,000 input tokens)" in trace.why_selected()
    assert selected(evaluate(policy(cat), cat, RequestFeatures(100_000, 1_000))) == entry.id


def test_a_budget_cap_sees_the_long_context_price() -> None:
    cat = catalog(LONG_CONTEXT)
    cap = policy(cat, {"id": "cap", "when": ["cmp", "cost_per_run", "le", 0.5]})
    assert decide(cap, cat, RequestFeatures(190_000, 1_000)).selected is not None
    assert decide(cap, cat, RequestFeatures(300_000, 1_000)).selected is None


def test_cached_input_tokens_cost_the_cached_price() -> None:
    cat = catalog(LONG_CONTEXT, FLAT)
    features = RequestFeatures(100_000, 1_000, tokens_cached=80_000)
    trace = evaluate(policy(cat), cat, features)
    index = cat.index_of(LONG_CONTEXT["id"])
    expected = (20_000 * 1.25 + 80_000 * 0.125 + 1_000 * 10) / 1e6
    assert trace.sort_keys(index) == (expected,)
    # an entry without a cached price charges cached tokens at price_in
    assert trace.sort_keys(cat.index_of(FLAT["id"])) == ((100_000 * 2 + 1_000 * 8) / 1e6,)
    assert trace.tokens == Tokens(100_000, 1_000, 80_000)
    assert trace.features == features


def test_more_cached_than_input_tokens_is_refused() -> None:
    with pytest.raises(RequestError, match="tokens_cached"):
        RequestFeatures(10, 10, tokens_cached=11)


def test_the_catalog_version_covers_the_tiers() -> None:
    changed = {**LONG_CONTEXT, "price_tiers": [{"above_tokens_in": 200_000, "price_in": 3}]}
    assert catalog(LONG_CONTEXT).version != catalog(changed).version
    assert catalog(LONG_CONTEXT).to_json()["entries"][0]["price_tiers"] == [
        {"above_tokens_in": 200_000, "price_in": 2.5, "price_out": 15, "price_cached_in": 0.25}
    ]
    assert "price_tiers" not in catalog(LONG_CONTEXT).schema


def test_the_evaluator_and_cost_of_agree_on_every_tier() -> None:
    tiers = [
        {"above_tokens_in": 32_000, "price_in": 1.5},
        {"above_tokens_in": 128_000, "price_in": 2, "price_out": 12},
    ]
    cat = catalog({**FLAT, "price_tiers": tiers})
    pol = policy(cat)
    for tokens_in in (0, 32_000, 32_001, 128_000, 128_001, 5_000_000):
        trace = evaluate(pol, cat, RequestFeatures(tokens_in, 777, min(tokens_in, 500)))
        assert trace.sort_keys(0) == (cost_of(cat.entries[0], trace.tokens),)  # type: ignore[arg-type]


T = "/entries/0/price_tiers"


def tiered(*tiers: dict[str, Any]) -> dict[str, Any]:
    return {**FLAT, "price_tiers": list(tiers)}


@pytest.mark.parametrize(
    ("entry", "pointer"),
    [
        ({**UNPRICED, "price_in": 1}, "/entries/0/price_in"),
        ({**FREE, "price_out": 1}, "/entries/0/price_out"),
        ({**FLAT, "price_source": "cheap"}, "/entries/0/price_source"),
        (tiered(), T),
        (tiered({"above_tokens_in": 0, "price_in": 1}), f"{T}/0/above_tokens_in"),
        (
            tiered({"above_tokens_in": 9, "price_in": 1}, {"above_tokens_in": 5, "price_in": 2}),
            f"{T}/1/above_tokens_in",
        ),
        (tiered({"above_tokens_in": 9}), f"{T}/0"),
        (tiered({"above_tokens_in": 9, "price_in": -1}), f"{T}/0/price_in"),
        (tiered({"above_tokens_in": 9, "cost": 1}), f"{T}/0/cost"),
        ({**FLAT, "price_cached_in": -0.5}, "/entries/0/price_cached_in"),
        ({k: v for k, v in FLAT.items() if k != "price_in"}, "/entries/0/price_in"),
    ],
)
def test_prices_that_contradict_their_source_are_refused(entry: Any, pointer: str) -> None:
    with pytest.raises(CatalogError) as caught:
        catalog(entry)
    assert caught.value.issues[0].pointer == pointer
