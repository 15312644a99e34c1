"""The trace: compact data, rebuilt words, memoized evaluation, request features."""

from __future__ import annotations

import pytest

from router.core import (
    EVALUATOR_VERSION,
    Catalog,
    Evaluator,
    MissingTokensError,
    Policy,
    RequestError,
    RequestFeatures,
    decide,
    estimate_features,
    evaluate,
)
from router.services.catalogs import bundled_catalog
from tests.policy.support import example_policy, policy_of


def test_removal_is_explained_with_observed_values() -> None:
    catalog = bundled_catalog()
    trace = evaluate(example_policy("enterprise-eu"), catalog)
    assert trace.explain_removal(catalog.index_of("openai/gpt-5@us")) == (
        'removed by residency.eu (region = "us", needs region = "eu")'
    )
    assert trace.explain_removal(catalog.index_of("mistral/mistral-small-3@eu")) == (
        "removed by tier.enterprise.floor "
        "(bench_intelligence = 0.52, needs bench_intelligence ≥ 0.6)"
    )


def test_failures_are_bitmaps_of_entry_indices() -> None:
    catalog = bundled_catalog()
    trace = evaluate(example_policy("enterprise-eu"), catalog)
    assert [len(bitmap) for bitmap in trace.failures] == [3] * 4  # 20 entries -> 3 bytes per rule
    assert [catalog.entries[i].id for i in trace.failed_entries("catalog.status")] == [
        "fireworks/qwen3-235b@us"
    ]
    assert len(trace.failed_entries("residency.eu")) == 13  # 7 of the 20 entries are in the eu


def test_empty_catalog_has_no_passing_entry() -> None:
    empty = Catalog.from_json({"name": "empty", "entries": []})
    trace = decide(Policy.from_json(policy_of(["eq", "region", "eu"]), empty.schema), empty)
    assert (trace.selected, trace.ranked, trace.removed()) == (None, (), {})
    assert "all 0 entries removed" in trace.summary()


def test_full_json_has_the_documented_keys() -> None:
    trace = evaluate(example_policy("free-tier"), bundled_catalog())
    document = trace.to_json()
    for key in ("fingerprint", "catalog_version", "selected", "ranked", "removed", "plan"):
        assert key in document
    assert document["selected"]["id"] == "google/gemini-3.5-flash@us"
    assert document["selected"]["keys"] == {"cost_per_run": 0.0002625}
    assert document["evaluator_version"] == EVALUATOR_VERSION


def test_memoized_evaluator_returns_the_same_trace() -> None:
    catalog = bundled_catalog()
    evaluator = Evaluator(maxsize=2)
    policy = example_policy("vip")
    first = evaluator.evaluate(policy, catalog)
    again = evaluator.evaluate(example_policy("vip"), catalog)  # same digest, another object
    assert again is first
    evaluator.evaluate(policy, catalog, RequestFeatures(1, 1))
    evaluator.evaluate(policy, catalog, RequestFeatures(2, 2))
    assert len(evaluator) == 2
    assert evaluator.evaluate(policy, catalog) is not first  # evicted, recomputed
    assert evaluator.evaluate(policy, catalog).to_json() == first.to_json()


def test_tokens_come_from_the_policy_else_the_features() -> None:
    catalog = bundled_catalog()
    no_tokens = {k: v for k, v in policy_of().items() if k != "tokens"}
    policy = Policy.from_json(no_tokens, catalog.schema)
    with pytest.raises(MissingTokensError):
        decide(policy, catalog)
    trace = decide(policy, catalog, RequestFeatures(2000, 0))
    assert trace.tokens is not None
    assert trace.tokens.tokens_in == 2000
    # the policy's tokens win over the request's
    trace = decide(example_policy("free-tier"), catalog, RequestFeatures(2000, 0))
    assert trace.tokens is not None
    assert (trace.tokens.tokens_in, trace.tokens.tokens_out) == (
        1500,
        500,
    )
    # no cost needed, no tokens needed
    plain = {"v": "sigma-pol/v1", "rules": [], "rank": [["desc", "bench_intelligence"]]}
    assert decide(Policy.from_json(plain, catalog.schema), catalog).tokens is None


def test_estimate_features_from_a_chat_body() -> None:
    body = {
        "model": "auto",
        "messages": [
            {"role": "system", "content": "x" * 40},
            {"role": "user", "content": [{"type": "text", "text": "y" * 9}, {"type": "image_url"}]},
        ],
        "max_tokens": 77,
    }
    # 3 per request + (4 + 40/4) + (4 + ceil(9/4))
    assert estimate_features(body) == RequestFeatures(3 + 14 + 7, 77)
    assert estimate_features({"messages": [], "max_completion_tokens": 5, "max_tokens": 9}) == (
        RequestFeatures(3, 5)
    )
    assert estimate_features({"messages": []}).tokens_out == 512


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({}, "/messages"),
        ({"messages": ["hi"]}, "/messages/0"),
        ({"messages": [{"content": 3}]}, "/messages/0/content"),
        ({"messages": [{"content": ["x"]}]}, "/messages/0/content/0"),
        ({"messages": [], "max_tokens": -1}, "/max_tokens"),
        ({"messages": [], "max_tokens": True}, "/max_tokens"),
        ({"messages": [], "max_tokens": 1e300}, "/max_tokens"),
        ({"messages": [], "max_tokens": float("inf")}, "/max_tokens"),
        # an integer beyond a double (JSON has no limit): refused, not an OverflowError
        ({"messages": [], "max_tokens": 10**400}, "/max_tokens"),
        ({"messages": [], "max_completion_tokens": -(10**400)}, "/max_completion_tokens"),
        ({"messages": [], "max_completion_tokens": 100_000_001}, "/max_completion_tokens"),
    ],
)
def test_estimate_features_rejects_bad_bodies(body: dict[str, object], pointer: str) -> None:
    with pytest.raises(RequestError) as info:
        estimate_features(body)
    assert info.value.pointer == pointer


def test_request_features_are_validated() -> None:
    with pytest.raises(RequestError):
        RequestFeatures(-1, 0)
    assert hash(RequestFeatures(1, 2)) == hash(RequestFeatures(1, 2))
