"""POST /x/replay (admin scope): the same replay as the CLI, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import copy

import httpx

from router.services.gateway import KeyStore
from tests.gateway._harness import TEST_CATALOG, Gateway
from tests.gateway.test_http_api import error_of, routed
from unhardcoded.db import create_engine


async def _admin_key(url: str) -> str:
    engine = create_engine(url)
    try:
        return (await KeyStore(engine).create("ops", ["admin"])).secret
    finally:
        await engine.dispose()


def test_replay_needs_admin_and_reports_original_and_against(gateway: Gateway) -> None:
    first, second = routed(gateway), routed(gateway, "globex")
    admin = {"authorization": f"Bearer {asyncio.run(_admin_key(gateway.db_url))}"}
    url = f"{gateway.root}/x/replay"

    denied = httpx.post(url, headers=gateway.auth("auditor"), json={"mode": "original"})
    assert denied.status_code == 403
    assert error_of(denied)["code"] == "insufficient_scope"

    proof = httpx.post(url, headers=admin, json={"mode": "original"}, timeout=60)
    assert proof.status_code == 200, proof.text
    report = proof.json()
    assert report["decisions"] == 2
    assert report["mismatches"] == 0
    assert report["replay_run_position"] is not None

    pricier = copy.deepcopy(TEST_CATALOG)
    pricier["entries"][0].update(price_in=100.0, price_out=200.0)  # gpt-cheap: now the priciest
    impact = httpx.post(
        url,
        headers=admin,
        json={"against": pricier, "filter": {"tenant": "globex"}, "record": False},
        timeout=60,
    )
    assert impact.status_code == 200, impact.text
    doc = impact.json()
    assert doc["decisions"] == 1
    assert doc["changed"] == 1
    assert doc["examples"][0]["decision_id"] == second
    assert doc["examples"][0]["previous"] == "fakeoai/gpt-cheap@eu"
    assert doc["examples"][0]["selected"] == "fakeant/claude-mid@eu"
    assert doc["replay_run_position"] is None
    only = httpx.post(
        url,
        headers=admin,
        json={"mode": "original", "filter": {"decision_ids": [first]}, "record": False},
    )
    assert only.json()["decisions"] == 1

    bad = {
        "/filter/since": {"mode": "original", "filter": {"since": "yesterday"}},
        "/mode": {"mode": "sideways"},
        "/against": {"mode": "against", "against": 3},
        "/filter/decision_ids/0": {"mode": "original", "filter": {"decision_ids": ["x"]}},
        "/bogus": {"mode": "original", "bogus": 1},
    }
    for pointer, body in bad.items():
        response = httpx.post(url, headers=admin, json=body)
        assert response.status_code == 400, (pointer, response.text)
        assert error_of(response)["param"] == pointer
    unknown = httpx.post(url, headers=admin, json={"against": "abcdef12"})
    assert unknown.status_code == 404
    assert error_of(unknown)["code"] == "unknown_catalog"
