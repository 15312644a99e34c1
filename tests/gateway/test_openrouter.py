"""OpenRouter as a provider: entries imported from its model list are called through an
OpenRouter-compatible upstream with the caller's key, and the decision holds there too — the call
carries OpenRouter's `provider` preferences derived from the policy, so a `no_log` rule is
enforced by OpenRouter's own endpoint choice, not only by our filter."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from router.services.catalogs import import_openrouter_file
from tests.gateway._harness import Gateway
from tests.support.fake_openrouter import Endpoint, FakeOpenRouter

LISTING = Path(__file__).parents[1] / "catalogs" / "data" / "openrouter.json"
TENANT_KEY = "sk-or-v1-tenant-5b0e7c2d9a41"
SONNET = "anthropic/claude-sonnet-4.5"
GROK = "x-ai/grok-4"
#: OpenRouter's endpoints for Sonnet: Anthropic's own collects nothing but retains (no ZDR), the
#: two clouds have zero data retention; without preferences OpenRouter would pick the first.
ENDPOINTS = {
    SONNET: [
        Endpoint("anthropic", collects_data=False, zdr=False),
        Endpoint("amazon-bedrock", collects_data=False, zdr=True),
        Endpoint("google-vertex", collects_data=False, zdr=True),
    ],
    # xAI is the only endpoint serving Grok.
    GROK: [Endpoint("xai", collects_data=False)],
}
OVERLAY = f"""\
name: openrouter-data-policies
schema:
  openrouter_providers: string_list
rules:
  - match: "openrouter/{SONNET}@unspecified"
    source: https://openrouter.ai/docs/features/privacy-and-logging
    set: {{no_log: true, openrouter_providers: [google-vertex, amazon-bedrock]}}
"""
NO_LOG: dict[str, Any] = {
    "v": "sigma-pol/v1",
    "rules": [
        {"id": "dpa.no_log", "when": ["is", "no_log"]},
        {"id": "vendor.anthropic", "when": ["eq", "vendor", "anthropic"]},
    ],
    "rank": [["asc", "cost_per_run"]],
    "fallback": {"max_attempts": 1},
}
ANY_SONNET: dict[str, Any] = {
    "v": "sigma-pol/v1",
    "rules": [{"id": "model.sonnet", "when": ["eq", "model", SONNET]}],
    "fallback": {"max_attempts": 1},
}


@pytest.fixture
def openrouter() -> Iterator[FakeOpenRouter]:
    with FakeOpenRouter(ENDPOINTS, api_key=TENANT_KEY) as server:
        yield server


@pytest.fixture
def gateway(tmp_path: Path, openrouter: FakeOpenRouter) -> Iterator[Gateway]:
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(OVERLAY)
    imported = import_openrouter_file(LISTING, as_of=dt.date(2026, 12, 7), overlays=[overlay])
    # Only the base URL is configured: no operator key, each caller brings its own.
    env = {"UNHARDCODED_PROVIDER_OPENROUTER_BASE_URL": openrouter.base_url}
    with Gateway(tmp_path, env, catalog=imported.catalog.to_json()) as running:
        yield running


def sdk(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.base_url,
        api_key=gateway.keys["acme"],
        default_headers={"X-Provider-Key-OpenRouter": TENANT_KEY},
    )


def test_a_no_log_policy_is_enforced_by_openrouters_own_endpoint_choice(
    gateway: Gateway, openrouter: FakeOpenRouter
) -> None:
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "hello"}],
        extra_body={"policy": NO_LOG},
    )
    assert raw.headers["x-routed-model"] == f"openrouter/{SONNET}@unspecified"
    assert raw.parse().choices[0].message.content == "fake reply to: hello"
    sent = openrouter.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {TENANT_KEY}"
    body = sent.json()
    assert body["model"] == SONNET
    assert "policy" not in body
    assert body["provider"] == {
        "allow_fallbacks": False,
        "order": ["google-vertex", "amazon-bedrock"],
        "data_collection": "deny",
        "zdr": True,
    }
    assert openrouter.served_by == ["google-vertex"]


def test_without_a_no_log_rule_only_the_order_and_no_fallbacks_are_sent(
    gateway: Gateway, openrouter: FakeOpenRouter
) -> None:
    sdk(gateway).chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "hello"}],
        extra_body={"policy": ANY_SONNET},
    )
    assert openrouter.requests[-1].json()["provider"] == {
        "allow_fallbacks": False,
        "order": ["google-vertex", "amazon-bedrock"],
    }


def test_the_callers_own_preferences_never_loosen_the_policy(
    gateway: Gateway, openrouter: FakeOpenRouter
) -> None:
    sdk(gateway).chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "hello"}],
        extra_body={
            "policy": NO_LOG,
            "provider": {
                "allow_fallbacks": True,
                "data_collection": "allow",
                "zdr": False,
                "order": ["anthropic"],
                "sort": "throughput",
            },
        },
    )
    assert openrouter.requests[-1].json()["provider"] == {
        "allow_fallbacks": False,
        "order": ["google-vertex", "amazon-bedrock"],
        "data_collection": "deny",
        "zdr": True,
        "sort": "throughput",
    }
    assert openrouter.served_by == ["google-vertex"]


def test_an_entry_openrouter_cannot_serve_under_the_policy_is_refused_there(
    tmp_path: Path,
) -> None:
    # The catalog claims no_log, but OpenRouter knows only a data-collecting endpoint: the
    # preferences make OpenRouter refuse instead of silently logging the prompt.
    endpoints = {SONNET: [Endpoint("anthropic", collects_data=True)]}
    with FakeOpenRouter(endpoints, api_key=TENANT_KEY) as strict:
        overlay = tmp_path / "overlay.yaml"
        overlay.write_text(OVERLAY.replace("[google-vertex, amazon-bedrock]", "[anthropic]"))
        imported = import_openrouter_file(LISTING, as_of=dt.date(2026, 12, 7), overlays=[overlay])
        env = {"UNHARDCODED_PROVIDER_OPENROUTER_BASE_URL": strict.base_url}
        with (
            Gateway(tmp_path, env, catalog=imported.catalog.to_json()) as gateway,
            pytest.raises(openai.NotFoundError) as caught,
        ):
            sdk(gateway).chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": "hello"}],
                extra_body={"policy": NO_LOG},
            )
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert strict.served_by == []
    assert len(strict.requests) == 1


def grok_policy(blocked: list[str]) -> dict[str, Any]:
    return {
        "v": "sigma-pol/v1",
        "rules": [
            {"id": "dpa.blocked_providers", "when": ["nin", "provider", blocked]},
            {"id": "model.grok", "when": ["eq", "vendor", "xai"]},
        ],
        "fallback": {"max_attempts": 1},
    }


def test_a_blocked_provider_cannot_serve_the_call_behind_openrouter(
    gateway: Gateway, openrouter: FakeOpenRouter
) -> None:
    # The entry's provider is `openrouter`, so the filter lets Grok through; the blocklist must
    # then hold at OpenRouter, whose only endpoint for Grok is xAI itself.
    with pytest.raises(openai.NotFoundError):
        sdk(gateway).chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "hello"}],
            extra_body={"policy": grok_policy(["deepseek", "xai"]), "provider": {"ignore": ["x"]}},
        )
    sent = openrouter.requests[-1].json()
    assert sent["model"] == GROK
    assert sent["provider"] == {"allow_fallbacks": False, "ignore": ["deepseek", "x", "xai"]}
    assert openrouter.served_by == []


def test_a_blocklist_of_other_providers_leaves_the_call_to_openrouter(
    gateway: Gateway, openrouter: FakeOpenRouter
) -> None:
    sdk(gateway).chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "hello"}],
        extra_body={"policy": grok_policy(["bedrock", "deepseek"])},
    )
    assert openrouter.requests[-1].json()["provider"] == {
        "allow_fallbacks": False,
        "ignore": ["amazon-bedrock", "deepseek"],
    }
    assert openrouter.served_by == ["xai"]
