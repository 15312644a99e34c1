"""`Gateway.parse`: the policy is parsed once where the request enters, and parsed policies are
memoized by document content and catalog version."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from router.core import Catalog, PolicyError
from router.services.decisions import DecisionService
from router.services.gateway import Gateway, Metrics
from router.services.upstream import MockTransport, ProviderRegistry, Response, Upstream
from tests.gateway.test_attempts import CATALOG, POLICY
from unhardcoded.db import migrated_ledger


@asynccontextmanager
async def _gateway(tmp_path: Path, catalog: Catalog) -> AsyncIterator[Gateway]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    async with (
        migrated_ledger(url, home=tmp_path) as ledger,
        MockTransport(lambda _: Response(500)) as client,
    ):
        upstream = Upstream(client, ProviderRegistry.from_env({}))
        yield Gateway(DecisionService(ledger), upstream, Metrics(), catalog=catalog)


async def test_same_content_same_policy_object_other_catalog_parsed_again(
    tmp_path: Path,
) -> None:
    catalog = Catalog.from_json(CATALOG)
    async with _gateway(tmp_path, catalog) as gateway:
        first = await gateway.parse(POLICY, None)
        assert first.catalog is catalog
        assert (await gateway.parse(copy.deepcopy(POLICY), None)).policy is first.policy
        reordered = dict(reversed(list(POLICY.items())))
        assert (await gateway.parse(reordered, None)).policy is first.policy
        other = Catalog.from_json({**CATALOG, "name": "other"})
        assert other.version != catalog.version
        again = gateway.policy(POLICY, other)
        assert again is not first.policy
        assert again == first.policy


async def test_close_but_different_documents_are_not_confused(tmp_path: Path) -> None:
    async with _gateway(tmp_path, Catalog.from_json(CATALOG)) as gateway:
        three = {**POLICY, "fallback": {"max_attempts": 3}}
        assert (await gateway.parse(three, None)).policy.max_attempts == 3
        two = {**POLICY, "fallback": {"max_attempts": 2}}
        assert (await gateway.parse(two, None)).policy.max_attempts == 2


async def test_invalid_documents_raise_every_time(tmp_path: Path) -> None:
    bad = {**POLICY, "rules": [{"id": "x", "when": ["eq", "no_such_attribute", 1]}]}
    async with _gateway(tmp_path, Catalog.from_json(CATALOG)) as gateway:
        for _ in range(2):
            with pytest.raises(PolicyError) as caught:
                await gateway.parse(bad, None)
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
