"""Provider settings from the environment, BYOK precedence and the cost of an attempt."""

from __future__ import annotations

import math

import pytest
from pydantic import SecretStr

from router.services.upstream import (
    DEFAULT_PROVIDERS,
    MockTransport,
    PricingError,
    ProviderConfigError,
    ProviderRegistry,
    Request,
    Response,
    Upstream,
    UpstreamError,
    Usage,
    cost_usd,
)


def test_defaults_cover_the_well_known_providers() -> None:
    registry = ProviderRegistry.from_env({})
    assert registry.provider("openai").base_url == "https://api.openai.com/v1"
    assert registry.provider("anthropic").kind == "anthropic"
    assert registry.provider("groq").base_url == "https://api.groq.com/openai/v1"
    assert registry.provider("echo").kind == "echo"
    assert registry.provider("ollama").requires_key is False
    assert set(registry) == set(DEFAULT_PROVIDERS)


def test_environment_overrides_and_extends() -> None:
    registry = ProviderRegistry.from_env(
        {
            "PATH": "/usr/bin",
            "UNHARDCODED_DATABASE_URL": "sqlite+aiosqlite:///x.db",
            "UNHARDCODED_PROVIDER_OPENAI_BASE_URL": "http://127.0.0.1:9000/v1/",
            "UNHARDCODED_PROVIDER_OPENAI_API_KEY": " sk-op ",
            "UNHARDCODED_PROVIDER_MY_VLLM_BASE_URL": "http://gpu-box:8000/v1",
            "UNHARDCODED_PROVIDER_MY_VLLM_TIMEOUT": "2.5",
            "UNHARDCODED_PROVIDER_CLAUDE_PROXY_KIND": "anthropic",
            "UNHARDCODED_PROVIDER_CLAUDE_PROXY_BASE_URL": "https://proxy.example",
        }
    )
    openai = registry.provider("openai")
    assert openai.base_url == "http://127.0.0.1:9000/v1"
    assert openai.api_key is not None
    assert openai.api_key.get_secret_value() == "sk-op"
    vllm = registry.provider("my-vllm")  # a hyphen is looked up as an underscore
    assert (vllm.kind, vllm.timeout_s, vllm.requires_key) == ("openai_compatible", 2.5, False)
    assert vllm.target("llama").connect_timeout_s == 2.5
    assert registry.provider("claude_proxy").kind == "anthropic"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"UNHARDCODED_PROVIDER_OPENAI_BASEURL": "x"}, "OPENAI_BASEURL: unknown provider setting"),
        ({"UNHARDCODED_PROVIDER_X_KIND": "grpc"}, "X_KIND: unknown kind 'grpc'"),
        ({"UNHARDCODED_PROVIDER_X_BASE_URL": "ftp://h"}, "must be an http:// or https:// URL"),
        ({"UNHARDCODED_PROVIDER_X_API_KEY": "k"}, "provider 'x' has no base URL"),
        ({"UNHARDCODED_PROVIDER_OPENAI_API_KEY": "  "}, "API key is empty"),
        ({"UNHARDCODED_PROVIDER_OPENAI_TIMEOUT": "0"}, "timeout must be a positive number"),
        ({"UNHARDCODED_PROVIDER_OPENAI_TIMEOUT": "nan"}, "timeout must be a positive number"),
        ({"UNHARDCODED_PROVIDER__BASE_URL": "http://h"}, "provider name '' must match"),
        ({"UNHARDCODED_PROVIDER_OPENAI_BASE_URL_EU": "eu.example"}, "OPENAI_BASE_URL_EU: base URL"),
        ({"UNHARDCODED_PROVIDER_VLLM_REGION": "EU"}, "VLLM_REGION: a region is a lower-case"),
    ],
)
def test_bad_settings_are_precise_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ProviderConfigError, match=message) as caught:
        ProviderRegistry.from_env(environ)
    assert caught.value.error_class == "config"


def test_unknown_provider_names_the_variable_to_set() -> None:
    with pytest.raises(ProviderConfigError, match="UNHARDCODED_PROVIDER_ACME_BASE_URL"):
        ProviderRegistry.from_env({}).provider("acme")


async def test_the_facade_refuses_unknown_or_keyless_providers_before_sending() -> None:
    def no_network(request: Request) -> Response:
        raise AssertionError("nothing may be sent")

    async with MockTransport(no_network) as client:
        upstream = Upstream(client, ProviderRegistry.from_env({}))
        with pytest.raises(ProviderConfigError, match="unknown provider 'acme'"):
            await upstream.complete({"messages": []}, "acme", "m")
        with pytest.raises(ProviderConfigError, match="no API key for provider 'openai'"):
            upstream.stream({"messages": []}, "openai", "gpt")


def test_an_entry_in_a_region_goes_only_to_an_endpoint_known_to_be_there() -> None:
    registry = ProviderRegistry.from_env(
        {
            "UNHARDCODED_PROVIDER_OPENAI_BASE_URL_EU": "https://eu.api.example/v1/",
            "UNHARDCODED_PROVIDER_ANTHROPIC_BASE_URL_US_GOV": "https://gov.example",
            "UNHARDCODED_PROVIDER_VLLM_REGION": "eu",
        }
    )
    openai = registry.provider("openai")
    assert openai.target("gpt", "eu").base_url == "https://eu.api.example/v1"
    assert openai.target("gpt", "us").base_url == "https://api.openai.com/v1"  # its home region
    for unbound in (None, "global", "unspecified"):
        assert openai.target("gpt", unbound).base_url == "https://api.openai.com/v1"
    assert registry.provider("anthropic").target("c", "us-gov").base_url == "https://gov.example"
    assert registry.provider("vllm").target("llama", "eu").base_url == "http://127.0.0.1:8000/v1"
    # Mistral's default host is global: an EU entry goes to its EU host
    assert registry.provider("mistral").target("m", "eu").base_url == "https://api.eu.mistral.ai/v1"
    assert registry.provider("mistral").target("m", None).base_url == "https://api.mistral.ai/v1"
    with pytest.raises(ProviderConfigError, match="UNHARDCODED_PROVIDER_OPENAI_BASE_URL_APAC"):
        openai.target("gpt", "apac")
    with pytest.raises(ProviderConfigError, match="its base URL has no known region"):
        registry.provider("google").target("gemini", "us")
    with pytest.raises(ProviderConfigError, match="no endpoint for region 'eu'"):
        registry.provider("anthropic").target("claude", "eu")
    assert registry.provider("echo").target("echo-1", "eu").kind == "echo"
    # OpenRouter's in-region hosts are known; a region it has no host for is refused
    openrouter = registry.provider("openrouter")
    assert openrouter.target("m", "eu").base_url == "https://eu.openrouter.ai/api/v1"
    assert openrouter.target("m", "unspecified").base_url == "https://openrouter.ai/api/v1"
    with pytest.raises(ProviderConfigError, match="UNHARDCODED_PROVIDER_OPENROUTER_BASE_URL_JP"):
        openrouter.target("m", "jp")


async def test_the_facade_sends_a_regional_entry_to_its_regional_endpoint() -> None:
    seen: list[str] = []

    def record(request: Request) -> Response:
        seen.append(str(request.url))
        return Response(503)

    environ = {
        "UNHARDCODED_PROVIDER_OPENAI_API_KEY": "sk-op",
        "UNHARDCODED_PROVIDER_OPENAI_BASE_URL_EU": "https://eu.api.example/v1",
    }
    async with MockTransport(record) as client:
        upstream = Upstream(client, ProviderRegistry.from_env(environ))
        body = {"messages": [{"role": "user", "content": "hi"}]}
        with pytest.raises(UpstreamError):
            await upstream.complete(body, "openai", "gpt", region="eu")
        with pytest.raises(ProviderConfigError, match="region 'apac'"):
            await upstream.complete(body, "openai", "gpt", region="apac")
    assert seen == ["https://eu.api.example/v1/chat/completions"]


def test_tenant_key_wins_then_operator_key_then_a_config_error() -> None:
    registry = ProviderRegistry.from_env({"UNHARDCODED_PROVIDER_OPENAI_API_KEY": "sk-operator"})
    openai = registry.provider("openai")
    tenant = openai.credentials(SecretStr("sk-tenant"))
    assert (tenant.reveal(), tenant.source) == ("sk-tenant", "tenant")
    operator = openai.credentials(None)
    assert (operator.reveal(), operator.source) == ("sk-operator", "operator")
    assert openai.credentials(SecretStr("")).source == "operator"
    with pytest.raises(ProviderConfigError, match="UNHARDCODED_PROVIDER_MISTRAL_API_KEY"):
        registry.provider("mistral").credentials()
    assert registry.provider("ollama").credentials().source == "none"


def test_cost_is_tokens_times_price_per_million() -> None:
    usage = Usage(prompt_tokens=1200, completion_tokens=400)
    assert math.isclose(cost_usd(usage, 3.0, 15.0), 0.0096)
    assert cost_usd(Usage(0, 0), 3.0, 15.0) == 0.0
    assert cost_usd(usage, 0.0, 0.0) == 0.0


@pytest.mark.parametrize(
    ("usage", "price_in", "price_out"),
    [
        (Usage(1, 1), -1.0, 1.0),
        (Usage(1, 1), 1.0, math.nan),
        (Usage(1, 1), math.inf, 1.0),
        (Usage(-1, 1), 1.0, 1.0),
    ],
)
def test_cost_refuses_unusable_inputs(usage: Usage, price_in: float, price_out: float) -> None:
    with pytest.raises(PricingError):
        cost_usd(usage, price_in, price_out)
