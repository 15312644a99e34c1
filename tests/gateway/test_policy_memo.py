"""`Gateway.policy`: parsed policies are memoized by document content and catalog version."""

from __future__ import annotations

import copy

import pytest

from router.core import Catalog, PolicyError
from router.services.gateway import Gateway, LedgerDecisions, Metrics
from router.services.upstream import MockTransport, ProviderRegistry, Response, Upstream
from tests.gateway.test_background_attempts import CATALOG, POLICY


def _gateway() -> Gateway:
    client = MockTransport(lambda _: Response(500))
    # The memo needs no ledger: the decision port is never called here.
    decisions = LedgerDecisions.__new__(LedgerDecisions)
    return Gateway(decisions, Upstream(client, ProviderRegistry.from_env({})), Metrics())


def test_same_content_same_policy_object_other_catalog_parsed_again() -> None:
    gateway = _gateway()
    catalog = Catalog.from_json(CATALOG)
    first = gateway.policy(POLICY, catalog)
    assert gateway.policy(copy.deepcopy(POLICY), catalog) is first
    reordered = dict(reversed(list(POLICY.items())))
    assert gateway.policy(reordered, catalog) is first
    other = Catalog.from_json({**CATALOG, "name": "other"})
    assert other.version != catalog.version
    again = gateway.policy(POLICY, other)
    assert again is not first
    assert again == first


def test_close_but_different_documents_are_not_confused() -> None:
    gateway = _gateway()
    catalog = Catalog.from_json(CATALOG)
    three = {**POLICY, "fallback": {"max_attempts": 3}}
    assert gateway.policy(three, catalog).max_attempts == 3
    assert gateway.policy({**POLICY, "fallback": {"max_attempts": 2}}, catalog).max_attempts == 2


def test_invalid_documents_raise_every_time() -> None:
    gateway = _gateway()
    catalog = Catalog.from_json(CATALOG)
    bad = {**POLICY, "rules": [{"id": "x", "when": ["eq", "no_such_attribute", 1]}]}
    for _ in range(2):
        with pytest.raises(PolicyError) as caught:
            gateway.policy(bad, catalog)
        assert caught.value.issues[0].pointer.startswith("/rules/0/when")


def test_the_memo_text_tells_apart_what_orjson_would_confuse() -> None:
    from router.services.gateway._gateway import _memo_text

    texts = [
        _memo_text(doc)
        for doc in (
            {"x": None},
            {"x": float("nan")},
            {"x": float("inf")},
            {"x": 1},
            {"x": 1.0},
            {"x": True},
            {"x": 2**70},
            {"x": "null"},
            {"x": [1]},
        )
    ]
    assert None not in texts
    assert len(set(texts)) == len(texts)
    assert _memo_text({"b": 1, "a": 2}) == _memo_text({"a": 2, "b": 1})
    assert _memo_text({"x": object()}) is None
