"""An entry's region picks the endpoint the gateway calls: the regional one when configured,
never the provider's base URL in its place (the residency rule must hold on the wire)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from router.services.decisions import ATTEMPT_FINISHED
from tests.gateway._harness import EU_POLICY, Gateway, provider_env
from tests.gateway.test_e2e_openai import events
from tests.support.fake_providers import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, FakeProvider

# Port 9 (discard) on loopback: nothing listens, so a call sent there fails to connect.
NOWHERE = "http://127.0.0.1:9/v1"


def _gateway(tmp_path: Path, fake_openai: FakeProvider, fake_anthropic: FakeProvider) -> Gateway:
    env = provider_env(NOWHERE, FAKE_OPENAI_KEY, fake_anthropic.base_url, FAKE_ANTHROPIC_KEY)
    env["UNHARDCODED_PROVIDER_FAKEOAI_BASE_URL_EU"] = fake_openai.base_url
    return Gateway(tmp_path, env)


@pytest.fixture
def eu_only_gateway(
    tmp_path: Path, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> Iterator[Gateway]:
    """fakeoai's base URL leads nowhere; only its EU endpoint is the fake."""
    with _gateway(tmp_path, fake_openai, fake_anthropic) as running:
        yield running


def _ask(gateway: Gateway) -> openai.types.chat.ChatCompletion:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.keys["acme"], max_retries=0)
    return client.chat.completions.create(
        model="x",
        messages=[{"role": "user", "content": "stay in the eu"}],
        extra_body={"policy": EU_POLICY},
    )


def test_an_eu_entry_is_sent_to_the_eu_endpoint(
    eu_only_gateway: Gateway, fake_openai: FakeProvider
) -> None:
    completion = _ask(eu_only_gateway)
    assert completion.choices[0].message.content == "fake reply to: stay in the eu"
    assert [r.json()["model"] for r in fake_openai.requests] == ["gpt-cheap"]


def test_an_eu_entry_without_an_eu_endpoint_is_refused_before_sending(
    tmp_path: Path, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    env = provider_env(
        fake_openai.base_url, FAKE_OPENAI_KEY, fake_anthropic.base_url, FAKE_ANTHROPIC_KEY
    )
    del env["UNHARDCODED_PROVIDER_FAKEOAI_BASE_URL_EU"]  # its base URL is in "us"
    with Gateway(tmp_path, env) as gateway, pytest.raises(openai.APIStatusError) as caught:
        _ask(gateway)
    assert caught.value.status_code == 502
    body = caught.value.body
    assert isinstance(body, dict)
    (attempt,) = body["attempts"]
    assert attempt["entry"] == "fakeoai/gpt-cheap@eu"
    assert attempt["error_class"] == "config"
    assert "UNHARDCODED_PROVIDER_FAKEOAI_BASE_URL_EU" in attempt["message"]
    assert fake_openai.requests == []
    (recorded,) = events(gateway, ATTEMPT_FINISHED)
    assert recorded["error_class"] == "config"
