"""OpenRouter's own facts hold at request time: an entry marked `no_log` from OpenRouter's ZDR
endpoint list is called with `zdr: true` and served by a ZDR endpoint, and an `@eu` entry from its
EU listing is called through the EU host only. Loopback servers speak OpenRouter's API."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from router.services.catalogs import bundled_policy_document, import_openrouter_file
from tests.gateway._harness import Gateway
from tests.support.fake_openrouter import Endpoint, FakeOpenRouter

ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "catalogs" / "data"
FACTS = ROOT / "router" / "data" / "overlays" / "public-facts.yaml"
TENANT_KEY = "sk-or-v1-tenant-2f9c61d0b7e3"
GPT_4O = "openai/gpt-4o"
#: OpenAI's own endpoint keeps prompts for abuse monitoring; Azure's is the ZDR one.
ENDPOINTS = {
    GPT_4O: [
        Endpoint("openai", collects_data=False, zdr=False),
        Endpoint("azure", collects_data=False, zdr=True),
    ],
}


@pytest.fixture
def servers() -> Iterator[tuple[FakeOpenRouter, FakeOpenRouter]]:
    with (
        FakeOpenRouter(ENDPOINTS, api_key=TENANT_KEY) as anywhere,
        FakeOpenRouter(ENDPOINTS, api_key=TENANT_KEY) as eu,
    ):
        yield anywhere, eu


@pytest.fixture
def gateway(tmp_path: Path, servers: tuple[FakeOpenRouter, FakeOpenRouter]) -> Iterator[Gateway]:
    anywhere, eu = servers
    imported = import_openrouter_file(
        DATA / "openrouter.json",
        as_of=dt.date(2026, 12, 7),
        overlays=[FACTS],
        zdr=DATA / "openrouter-zdr.json",
        eu=DATA / "openrouter-eu.json",
    )
    env = {
        "UNHARDCODED_PROVIDER_OPENROUTER_BASE_URL": anywhere.base_url,
        "UNHARDCODED_PROVIDER_OPENROUTER_BASE_URL_EU": eu.base_url,
    }
    with Gateway(tmp_path, env, catalog=imported.catalog.to_json()) as running:
        yield running


def call(gateway: Gateway, policy: dict[str, Any]) -> Any:
    client = openai.OpenAI(
        base_url=gateway.base_url,
        api_key=gateway.keys["acme"],
        default_headers={"X-Provider-Key-OpenRouter": TENANT_KEY},
    )
    return client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hello"}], extra_body={"policy": policy}
    )


def test_the_regulated_example_is_served_by_a_zdr_endpoint(
    gateway: Gateway, servers: tuple[FakeOpenRouter, FakeOpenRouter]
) -> None:
    anywhere, eu = servers
    raw = call(gateway, bundled_policy_document("regulated"))
    assert raw.headers["x-routed-model"] == f"openrouter/{GPT_4O}@unspecified"
    sent = anywhere.requests[-1].json()
    # The example blocks DeepSeek and xAI: OpenRouter may not use them either.
    assert sent["provider"] == {
        "allow_fallbacks": False,
        "ignore": ["deepseek", "xai"],
        "data_collection": "deny",
        "zdr": True,
    }
    assert anywhere.served_by == ["azure"]
    assert eu.requests == []


def test_an_eu_entry_is_called_through_openrouters_eu_host_only(
    gateway: Gateway, servers: tuple[FakeOpenRouter, FakeOpenRouter]
) -> None:
    anywhere, eu = servers
    policy = json.loads((ROOT / "docs" / "examples" / "enterprise-eu-openrouter.json").read_text())
    raw = call(gateway, policy)
    assert raw.headers["x-routed-model"] == "openrouter/anthropic/claude-sonnet-4.5@eu"
    assert [r.json()["model"] for r in eu.requests] == ["anthropic/claude-sonnet-4.5"]
    assert anywhere.requests == []
