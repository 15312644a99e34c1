"""Retry semantics as the official SDKs read them: the caller's mistakes are final 4xx answers
(`x-should-retry: false`), transient upstream failures are retryable with the provider's
`retry-after`, and the SDK at its default retry settings makes no extra decision for a final
error."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from router.services.decisions import ATTEMPT_FINISHED, DECISION_MADE
from tests.gateway._harness import EU_POLICY, Gateway, provider_env
from tests.gateway.test_e2e_openai import events
from tests.support.fake_providers import (
    FAKE_OPENAI_KEY,
    FakeProvider,
    Fault,
)

ANTHROPIC_ONLY: dict[str, Any] = {
    "v": "sigma-pol/v1",
    "rules": [{"id": "vendor.anthropic", "when": ["eq", "provider", "fakeant"]}],
    "rank": [["asc", "cost_per_run"]],
}
MESSAGES = [{"role": "user", "content": "hi"}]


def sdk(gateway: Gateway) -> openai.OpenAI:
    """The openai client at its default retry settings (two retries)."""
    return openai.OpenAI(base_url=gateway.base_url, api_key=gateway.keys["acme"])


def test_a_bad_byok_key_is_the_callers_401_one_decision_one_upstream_call(
    gateway: Gateway, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(gateway).chat.completions.create(
            model="x",
            messages=MESSAGES,  # type: ignore[arg-type]
            extra_body={"policy": EU_POLICY},
            extra_headers={"X-Provider-Key-FakeOAI": "sk-tenant-wrong-0000"},
        )
    assert caught.value.status_code == 401
    assert caught.value.response.headers["x-should-retry"] == "false"
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["type"] == "authentication_error"
    assert error["code"] == "upstream_refused_request"
    assert "Incorrect API key" in error["message"]  # the provider's own words …
    assert "sk-tenant-wrong-0000" not in caught.value.response.text  # … without the key
    assert len(events(gateway, DECISION_MADE)) == 1
    assert len(fake_openai.requests) == 1
    assert fake_anthropic.requests == []  # a refused request is not tried elsewhere
    (attempt,) = events(gateway, ATTEMPT_FINISHED)
    assert (attempt["error_class"], attempt["http_status"]) == ("client_error", 401)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_a_request_the_provider_refuses_keeps_the_providers_status(
    gateway: Gateway, fake_openai: FakeProvider, status: int
) -> None:
    fake_openai.script("gpt-cheap", Fault(status=status))
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        headers=gateway.auth(),
        json={"model": "x", "messages": MESSAGES, "policy": EU_POLICY},
    )
    assert response.status_code == status
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["decision_id"]
    assert error["code"] == "upstream_refused_request"
    assert len(fake_openai.requests) == 1


def test_a_rate_limited_plan_is_429_with_retry_after_and_the_sdk_retries_after_it(
    gateway: Gateway,
    fake_openai: FakeProvider,
    fake_anthropic: FakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    limited = Fault(status=429, headers={"retry-after": "1"})
    fake_openai.script("gpt-cheap", limited)
    fake_anthropic.script("claude-mid", limited)
    with caplog.at_level(logging.INFO, logger="openai"):
        raw = sdk(gateway).chat.completions.with_raw_response.create(
            model="x",
            messages=MESSAGES,  # type: ignore[arg-type]
            extra_body={"policy": EU_POLICY},
        )
    assert raw.parse().choices[0].message.content == "fake reply to: hi"
    # The SDK waited the provider's delay, passed through by the gateway, then asked again.
    retries = [r.getMessage() for r in caplog.records if "Retrying request" in r.getMessage()]
    assert len(retries) == 1
    assert "in 1.000000 seconds" in retries[0]
    decisions = events(gateway, DECISION_MADE)
    assert len(decisions) == 2  # one per HTTP request: the first plan failed, the second answered
    assert len(fake_openai.requests) == 2
    assert len(fake_anthropic.requests) == 1


def test_a_rate_limited_answer_carries_the_retry_headers(
    gateway: Gateway, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    fake_openai.script("gpt-cheap", Fault(status=429, headers={"retry-after": "7"}))
    fake_anthropic.script("claude-mid", Fault(status=429, headers={"retry-after-ms": "2500"}))
    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        headers=gateway.auth(),
        json={"model": "x", "messages": MESSAGES, "policy": EU_POLICY},
    )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "upstream_rate_limited"
    # The last provider's delay: the one the plan ended on.
    assert response.headers["x-should-retry"] == "true"
    assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("3", "2500")


def test_transient_failures_are_retryable_and_final_ones_are_not(
    gateway: Gateway, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    url = f"{gateway.base_url}/chat/completions"
    body = {"model": "x", "messages": MESSAGES, "policy": EU_POLICY}
    fake_openai.script("gpt-cheap", Fault(status=503))
    fake_anthropic.script("claude-mid", Fault(status=500))
    failed = httpx.post(url, headers=gateway.auth(), json=body)
    assert (failed.status_code, failed.headers["x-should-retry"]) == (502, "true")
    assert "retry-after" not in failed.headers
    for response in (
        httpx.post(url, headers=gateway.auth(), json={**body, "policy": {"v": "nope"}}),
        httpx.post(url, headers={"authorization": "Bearer uhk_wrong"}, json=body),
        httpx.get(f"{gateway.root}/no/such/route"),
        httpx.post(url, headers=gateway.auth(), content=b"{"),
    ):
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["x-should-retry"] == "false"


def test_logprobs_to_an_anthropic_entry_is_400_with_its_pointer(
    gateway: Gateway, fake_anthropic: FakeProvider
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gateway).chat.completions.create(
            model="x",
            messages=MESSAGES,  # type: ignore[arg-type]
            logprobs=True,
            extra_body={"policy": ANTHROPIC_ONLY},
        )
    assert caught.value.response.headers["x-should-retry"] == "false"
    error = caught.value.body
    assert isinstance(error, dict)
    assert (error["param"], error["code"]) == ("/logprobs", "unsupported")
    assert fake_anthropic.requests == []  # nothing was sent
    assert len(events(gateway, DECISION_MADE)) == 1


def test_an_operator_key_the_provider_refuses_is_ours_and_final(
    tmp_path: Path, fake_anthropic: FakeProvider
) -> None:
    with FakeProvider("openai", api_key=FAKE_OPENAI_KEY) as provider:
        env = provider_env(provider.base_url, "sk-operator-wrong", fake_anthropic.base_url, "x")
        with Gateway(tmp_path, env) as gateway:
            response = httpx.post(
                f"{gateway.base_url}/chat/completions",
                headers=gateway.auth(),
                json={"model": "x", "messages": MESSAGES, "policy": EU_POLICY},
            )
    assert response.status_code == 502  # not the caller's 401: the caller's key was fine
    assert response.headers["x-should-retry"] == "false"
    assert len(provider.requests) == 1
    assert "sk-operator-wrong" not in response.text
