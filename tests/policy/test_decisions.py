"""Decision tables over the example policies on the bundled catalog (the issue's acceptance)."""

from __future__ import annotations

import pytest

from router.core import STATUS_RULE, Evaluator, NoEntryPasses, Policy, evaluate
from router.services.catalogs import bundled_catalog
from tests.policy.support import catalog_of, entry, example_policy, policy_of


@pytest.mark.parametrize(
    ("policy", "selected", "plan"),
    [
        (
            "free-tier",
            "google/gemini-3.5-flash@us",
            [
                "google/gemini-3.5-flash@us",
                "google/gemini-3.5-flash@eu",
                "mistral/mistral-small-3@eu",
            ],
        ),
        (
            "vip",
            "openai/gpt-5@us",
            ["openai/gpt-5@us", "google/gemini-3.5-pro@us", "google/gemini-3.5-pro@eu"],
        ),
        (
            "enterprise-eu",
            "google/gemini-3.5-flash@eu",
            ["google/gemini-3.5-flash@eu", "openai/gpt-5-mini@eu", "mistral/mistral-medium-3@eu"],
        ),
        (
            "regulated",
            "google/gemini-3.5-flash@eu",
            ["google/gemini-3.5-flash@eu", "mistral/mistral-small-3@eu", "openai/gpt-5-mini@eu"],
        ),
    ],
)
def test_example_policy_selects(policy: str, selected: str, plan: list[str]) -> None:
    catalog = bundled_catalog()
    trace = evaluate(example_policy(policy), catalog)
    assert trace.selected is not None
    assert catalog.entries[trace.selected].id == selected
    assert [catalog.entries[i].id for i in trace.plan] == plan


@pytest.mark.parametrize(
    ("policy", "entry_id", "failed"),
    [
        ("free-tier", "openai/gpt-5-nano@us", ("tier.free.floor",)),
        ("free-tier", "fireworks/qwen3-235b@us", (STATUS_RULE,)),
        ("vip", "google/gemini-3.5-flash@us", ("tier.vip.floor",)),
        (
            "enterprise-eu",
            "deepseek/deepseek-v3.2@apac",
            ("contract.approved_providers", "residency.eu"),
        ),
        (
            "enterprise-eu",
            "groq/llama-4-scout@us",
            ("contract.approved_providers", "residency.eu", "tier.enterprise.floor"),
        ),
        ("enterprise-eu", "mistral/mistral-small-3@eu", ("tier.enterprise.floor",)),
        ("regulated", "deepseek/deepseek-v3.2@apac", ("dpa.blocked_providers", "dpa.no_log")),
        ("regulated", "groq/llama-4-scout@us", ("dpa.no_log", "product.needs_tools")),
        ("regulated", "xai/grok-4-fast@us", ("dpa.blocked_providers", "dpa.no_log")),
    ],
)
def test_every_failed_rule_is_recorded(policy: str, entry_id: str, failed: tuple[str, ...]) -> None:
    catalog = bundled_catalog()
    trace = evaluate(example_policy(policy), catalog)
    assert trace.removed()[catalog.index_of(entry_id)] == failed


def test_vip_tie_on_cost_is_broken_by_bench_intelligence() -> None:
    catalog = bundled_catalog()
    trace = evaluate(example_policy("vip"), catalog)
    gpt5, gemini = catalog.index_of("openai/gpt-5@us"), catalog.index_of("google/gemini-3.5-pro@us")
    assert trace.sort_keys(gpt5)[0] == trace.sort_keys(gemini)[0]
    assert trace.why_selected() == (
        "openai/gpt-5@us wins on bench_intelligence (desc): 0.88 > 0.86 of runner-up "
        "google/gemini-3.5-pro@us"
    )


def test_full_tie_is_broken_by_entry_id() -> None:
    catalog = catalog_of(entry("b"), entry("c"), entry("a"))
    trace = evaluate(Policy.from_json(policy_of(), catalog.schema), catalog)
    assert [catalog.entries[i].id for i in trace.ranked] == ["a", "b", "c"]
    assert trace.why_selected().endswith('the tie is broken by entry id ("a" < "b")')


def test_fallback_plan_length_follows_max_attempts() -> None:
    catalog = bundled_catalog()
    document = policy_of(["eq", "region", "eu"], fallback={"max_attempts": 5})
    trace = evaluate(Policy.from_json(document, catalog.schema), catalog)
    assert len(trace.plan) == 5
    assert trace.plan == trace.ranked[:5]
    one = Policy.from_json(policy_of(fallback={"max_attempts": 1}), catalog.schema)
    assert len(evaluate(one, catalog).plan) == 1


def test_plan_never_leaves_the_passing_set() -> None:
    catalog = bundled_catalog()
    # only two entries pass, max_attempts asks for more: the plan stays within the two
    document = policy_of(["eq", "model", "gemini-3.5-flash"], fallback={"max_attempts": 16})
    trace = evaluate(Policy.from_json(document, catalog.schema), catalog)
    assert [catalog.entries[i].id for i in trace.plan] == [
        "google/gemini-3.5-flash@us",
        "google/gemini-3.5-flash@eu",
    ]


def test_no_entry_passes_carries_the_full_trace() -> None:
    catalog = bundled_catalog()
    policy = Policy.from_json(policy_of(["cmp", "bench_intelligence", "gt", 0.95]), catalog.schema)
    with pytest.raises(NoEntryPasses) as info:
        evaluate(policy, catalog)
    trace = info.value.trace
    assert trace.selected is None
    assert trace.plan == ()
    assert len(trace.removed()) == len(catalog.entries)
    assert "all 20 entries removed" in str(info.value)
    with pytest.raises(NoEntryPasses):
        Evaluator().evaluate(policy, catalog)


def test_inactive_entries_are_removed_by_the_builtin_rule() -> None:
    catalog = catalog_of(entry("a", status="deprecated"), entry("b", status=None), entry("c"))
    trace = evaluate(Policy.from_json(policy_of(), catalog.schema), catalog)
    assert [catalog.entries[i].id for i in trace.ranked] == ["c"]
    assert trace.removed() == {0: (STATUS_RULE,), 1: (STATUS_RULE,)}
    assert trace.explain_removal(0) == (
        'removed by catalog.status (status = "deprecated", needs "active")'
    )
    assert trace.explain_removal(1) == 'removed by catalog.status (status missing, needs "active")'


def test_cost_per_run_is_a_budget_cap_and_a_rank_key() -> None:
    catalog = catalog_of(
        entry("cheap", price_in=1.0, price_out=1.0),
        entry("mid", price_in=2.0, price_out=10.0),
        entry("dear", price_in=30.0, price_out=60.0),
    )
    # 1000 in, 100 out: cheap 0.0011, mid 0.003, dear 0.036 USD
    document = policy_of(["cmp", "cost_per_run", "le", 0.003], rank=[["desc", "cost_per_run"]])
    trace = evaluate(Policy.from_json(document, catalog.schema), catalog)
    assert [catalog.entries[i].id for i in trace.ranked] == ["mid", "cheap"]
    assert trace.sort_keys(catalog.index_of("mid")) == (0.003,)
    assert "cost_per_run = 0.036" in trace.explain_removal(catalog.index_of("dear"))


def test_missing_rank_attribute_sorts_last_in_both_directions() -> None:
    catalog = catalog_of(entry("a"), entry("b", score=1), entry("c", score=2))
    for direction, expected in (("asc", ["b", "c", "a"]), ("desc", ["c", "b", "a"])):
        document = policy_of(rank=[[direction, "score"]])
        trace = evaluate(Policy.from_json(document, catalog.schema), catalog)
        assert [catalog.entries[i].id for i in trace.ranked] == expected
