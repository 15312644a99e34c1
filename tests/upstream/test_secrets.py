"""Provider keys never appear in an error message, a repr, a traceback or a log record."""

from __future__ import annotations

import logging
import traceback

import pytest
from pydantic import SecretStr

from router.services.upstream import (
    MockTransport,
    ProviderRegistry,
    Request,
    Response,
    Upstream,
    UpstreamClientError,
    UpstreamError,
)
from tests.support.fake_providers import (
    FAKE_ANTHROPIC_KEY,
    FAKE_OPENAI_KEY,
    FakeProvider,
    Fault,
)

TENANT_KEY = "sk-tenant-byok-77aa01d2c3"
SECRETS = (FAKE_OPENAI_KEY, FAKE_ANTHROPIC_KEY, TENANT_KEY)
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def drain(upstream: Upstream, provider: str) -> None:
    async with upstream.stream({**BODY, "stream": True}, provider, "m") as stream:
        async for _event in stream:
            pass


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def everything_about(error: BaseException) -> str:
    parts = [str(error), repr(error), repr(error.args)]
    parts += traceback.format_exception(error)
    parts += [str(getattr(error, "detail", ""))]
    return "\n".join(parts)


async def test_no_key_in_errors_tracebacks_or_logs(
    upstream: Upstream,
    fake_openai: FakeProvider,
    fake_anthropic: FakeProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    faults = [Fault(status=s) for s in (400, 401, 408, 409, 429, 500, 529)]
    faults += [Fault(drop=True), Fault(garbage=True)]
    errors: list[UpstreamError] = []
    for provider, fake in (("openai", fake_openai), ("anthropic", fake_anthropic)):
        fake.script("m", *faults, Fault(cut_after=1), Fault(stream_error="overloaded_error"))
        for tenant_key in [None] * len(faults):
            with pytest.raises(UpstreamError) as caught:
                await upstream.complete(BODY, provider, "m", tenant_key=tenant_key)
            errors.append(caught.value)
        for _ in range(2):
            with pytest.raises(UpstreamError) as caught:
                await drain(upstream, provider)
            errors.append(caught.value)
        fake.api_key = TENANT_KEY[::-1]  # the tenant's key is refused: a 401 naming it masked
        with pytest.raises(UpstreamClientError) as refused:
            await upstream.complete(BODY, provider, "m", tenant_key=SecretStr(TENANT_KEY))
        errors.append(refused.value)
    assert len(errors) == 2 * (len(faults) + 3)
    assert {e.error_class for e in errors} >= {"client_error", "rate_limited", "connect"}
    for error in errors:
        assert_clean(everything_about(error))
    assert caplog.records  # failures are logged …
    for record in caplog.records:  # … without a key, message or traceback
        assert_clean(record.getMessage())
        assert_clean(logging.Formatter().format(record))
    assert_clean(caplog.text)


async def test_an_upstream_that_echoes_the_key_is_redacted() -> None:
    def handler(request: Request) -> Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        return Response(400, json={"error": {"message": f"bad key {key}", "code": key}})

    registry = ProviderRegistry.from_env(
        {
            "UNHARDCODED_PROVIDER_LEAKY_BASE_URL": "http://leaky.invalid/v1",
            "UNHARDCODED_PROVIDER_LEAKY_API_KEY": FAKE_OPENAI_KEY,
        }
    )
    async with MockTransport(handler) as client:
        with pytest.raises(UpstreamClientError) as caught:
            await Upstream(client, registry).complete(BODY, "leaky", "m")
    assert caught.value.detail == "bad key [REDACTED]"
    assert_clean(everything_about(caught.value))


async def test_an_upstream_that_echoes_the_body_keeps_it_out_of_the_message() -> None:
    secret_prompt = "my diagnosis is confidential-7f3a"

    def handler(request: Request) -> Response:
        return Response(422, json={"detail": [{"input": request.content.decode()}]})

    registry = ProviderRegistry.from_env(
        {"UNHARDCODED_PROVIDER_VLLM_BASE_URL": "http://v.invalid/v1"}
    )
    body = {"messages": [{"role": "user", "content": secret_prompt}]}
    async with MockTransport(handler) as client:
        with pytest.raises(UpstreamClientError) as caught:
            await Upstream(client, registry).complete(body, "vllm", "m")
    assert caught.value.detail is not None
    assert secret_prompt in caught.value.detail  # for the caller only …
    message = "\n".join(
        [str(caught.value), repr(caught.value), *traceback.format_exception(caught.value)]
    )
    assert secret_prompt not in message  # … never in what gets logged


def test_reprs_hide_keys() -> None:
    registry = ProviderRegistry.from_env(
        {
            "UNHARDCODED_PROVIDER_OPENAI_API_KEY": FAKE_OPENAI_KEY,
            "UNHARDCODED_PROVIDER_ANTHROPIC_API_KEY": FAKE_ANTHROPIC_KEY,
        }
    )
    openai = registry.provider("openai")
    credentials = openai.credentials(SecretStr(TENANT_KEY))
    texts = [repr(openai), str(openai), repr(credentials), str(credentials)]
    texts += [repr(registry.provider("anthropic")), repr(dict(registry))]
    texts += [repr(openai.target("gpt")), repr(openai.credentials())]
    for text in texts:
        assert_clean(text)
    assert "**********" in repr(credentials)
