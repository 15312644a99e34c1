"""The export's catalog-wide group columns equal what the trace says, entry by entry: the rank
order, each ranked entry's rank-key values and what each rule saw of each entry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reports._groups import CatalogRanks
from router.core import (
    STATUS_RULE,
    Catalog,
    Policy,
    PolicyError,
    RequestFeatures,
    decide,
)
from router.services.catalogs import BUNDLED_POLICIES, bundled_catalog, bundled_policy_document
from router.services.decisions import RecordMismatchError, rank_order
from tests.replay.test_before_price_tiers import TIERED

_MIXED = {
    "v": "sigma-pol/v1",
    "rules": [
        {"id": "budget", "when": ["cmp", "cost_per_run", "le", 0.004]},
        {
            "id": "where",
            "when": ["any", ["eq", "region", "eu"], ["cmp", "context_window", "ge", 200000]],
        },
    ],
    "rank": [["desc", "bench_intelligence"], ["asc", "cost_per_run"], ["desc", "price_in"]],
}

_PRICED = {
    "v": "sigma-pol/v1",
    "rules": [{"id": "budget", "when": ["cmp", "cost_per_run", "le", 0.5]}],
    "rank": [["asc", "cost_per_run"], ["desc", "price_cached_in"]],
}

_REQUESTS = [
    RequestFeatures(1_200, 400),
    RequestFeatures(100_000, 1_000),
    RequestFeatures(300_000, 1_000),
    RequestFeatures(300_000, 1_000, tokens_cached=250_000),
    RequestFeatures(150_000, 500, tokens_cached=140_000),
]


def _cases() -> list[tuple[Catalog, Policy, RequestFeatures]]:
    cases = []
    for catalog in (bundled_catalog(), Catalog.from_json(TIERED)):
        documents = [bundled_policy_document(name) for name in sorted(BUNDLED_POLICIES)]
        documents += [_MIXED, _PRICED, {"v": "sigma-pol/v1", "rules": []}]
        for document in documents:
            try:
                policy = Policy.from_json(document, catalog.schema)
            except PolicyError:  # reads attributes this catalog does not have
                continue
            cases += [(catalog, policy, features) for features in _REQUESTS]
    return cases


@pytest.mark.parametrize(("catalog", "policy", "features"), _cases())
def test_columns_equal_the_trace(
    catalog: Catalog, policy: Policy, features: RequestFeatures
) -> None:
    ranks = CatalogRanks(keep=2)  # small: entries are evicted and rebuilt along the way
    trace = decide(policy, catalog, features)
    passing = sorted(trace.ranked)
    assert ranks.rank(policy, catalog, trace.tokens, passing) == trace.ranked
    assert rank_order(policy, catalog, trace.tokens, passing) == trace.ranked

    values = ranks.table(catalog, policy.rank, trace.tokens).values
    for index in range(len(catalog.entries)):
        got = [None if math.isnan(v) else v for v in values[index].tolist()]
        assert got == list(trace.sort_keys(index)), catalog.entries[index].id

    every = np.arange(len(catalog.entries))
    for rule_id in trace.rule_ids:
        if rule_id == STATUS_RULE:
            attrs: tuple[str, ...] = ("status",)
        else:
            attrs = policy.rules[policy.rule_index(rule_id)].attributes()
        seen = ranks.seen(catalog, attrs, trace.tokens, every).to_pylist()
        assert seen == [trace.failure(i, rule_id).seen() for i in every.tolist()], rule_id


def test_a_cost_rank_without_tokens_is_a_mismatch() -> None:
    catalog = bundled_catalog()
    policy = Policy.from_json(
        {"v": "sigma-pol/v1", "rules": [], "rank": [["asc", "cost_per_run"]]}, catalog.schema
    )
    with pytest.raises(RecordMismatchError, match="records no tokens"):
        CatalogRanks().rank(policy, catalog, None, [0, 1])
