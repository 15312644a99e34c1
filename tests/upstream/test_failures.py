"""Transport and protocol failures for both HTTP adapters: typed errors with a stable class."""

from __future__ import annotations

import asyncio
import re
import socket

import pytest

from router.services.upstream import (
    AiohttpTransport,
    Credentials,
    MockTransport,
    ProviderRegistry,
    Request,
    Response,
    Upstream,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimitedError,
    UpstreamServerError,
    UpstreamTimeoutError,
)
from tests.support.fake_providers import (
    FAKE_ANTHROPIC_KEY,
    FAKE_OPENAI_KEY,
    FakeProvider,
    Fault,
)
from tests.support.raw_http import RawServer, response, serving

BODY = {"model": "m", "messages": [{"role": "user", "content": "one two three four"}]}
STREAM = {**BODY, "stream": True}
PROVIDERS = ["openai", "anthropic"]


@pytest.fixture
def quick(
    transport: AiohttpTransport, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> Upstream:
    """Both fakes with a 1 s timeout, so hangs and stalls end quickly in a timeout. (0.3 s was
    once too short for the connect, which uses the same figure: a loopback connect of a test
    process stalled past it in a full suite run.)"""
    registry = ProviderRegistry.from_env(
        {
            "UNHARDCODED_PROVIDER_OPENAI_BASE_URL": fake_openai.base_url,
            "UNHARDCODED_PROVIDER_OPENAI_API_KEY": FAKE_OPENAI_KEY,
            "UNHARDCODED_PROVIDER_OPENAI_TIMEOUT": "1.0",
            "UNHARDCODED_PROVIDER_ANTHROPIC_BASE_URL": fake_anthropic.base_url,
            "UNHARDCODED_PROVIDER_ANTHROPIC_API_KEY": FAKE_ANTHROPIC_KEY,
            "UNHARDCODED_PROVIDER_ANTHROPIC_TIMEOUT": "1.0",
        }
    )
    return Upstream(transport, registry)


def fake_for(
    provider: str, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> FakeProvider:
    return fake_openai if provider == "openai" else fake_anthropic


async def drain(upstream: Upstream, provider: str, body: dict = STREAM) -> list[bytes]:
    async with upstream.stream(body, provider, "m") as stream:
        return [event async for event in stream]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_refused_connection_is_a_retryable_connect_error(transport: AiohttpTransport) -> None:
    registry = ProviderRegistry.from_env(
        {"UNHARDCODED_PROVIDER_LOCAL_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
    )
    with pytest.raises(UpstreamConnectError) as caught:
        await Upstream(transport, registry).complete(BODY, "local", "m")
    assert (caught.value.error_class, caught.value.retryable, caught.value.status) == (
        "connect",
        True,
        None,
    )


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_dropped_connection_is_a_connect_error(
    quick: Upstream, fake_openai: FakeProvider, fake_anthropic: FakeProvider, provider: str
) -> None:
    fake_for(provider, fake_openai, fake_anthropic).script("m", Fault(drop=True), Fault(drop=True))
    with pytest.raises(UpstreamConnectError):
        await quick.complete(BODY, provider, "m")
    with pytest.raises(UpstreamConnectError):
        await drain(quick, provider)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_no_answer_within_the_timeout_is_a_timeout(
    quick: Upstream, fake_openai: FakeProvider, fake_anthropic: FakeProvider, provider: str
) -> None:
    fake_for(provider, fake_openai, fake_anthropic).script("m", Fault(hang=True), Fault(hang=True))
    with pytest.raises(UpstreamTimeoutError) as caught:
        await quick.complete(BODY, provider, "m")
    assert caught.value.retryable is True
    with pytest.raises(UpstreamTimeoutError):
        await drain(quick, provider)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_garbage_json_is_a_protocol_error(
    quick: Upstream, fake_openai: FakeProvider, fake_anthropic: FakeProvider, provider: str
) -> None:
    fake_for(provider, fake_openai, fake_anthropic).script(
        "m", Fault(garbage=True), Fault(garbage=True)
    )
    with pytest.raises(UpstreamProtocolError) as caught:
        await quick.complete(BODY, provider, "m")
    assert "not valid JSON" in str(caught.value)
    assert caught.value.error_class == "protocol"
    with pytest.raises(UpstreamProtocolError):
        await drain(quick, provider)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_stream_cut_mid_way_is_a_protocol_error_after_the_first_events(
    quick: Upstream, fake_openai: FakeProvider, fake_anthropic: FakeProvider, provider: str
) -> None:
    fake_for(provider, fake_openai, fake_anthropic).script("m", Fault(cut_after=3))
    received: list[bytes] = []

    async def consume() -> None:
        async with quick.stream(STREAM, provider, "m") as stream:
            async for event in stream:
                received.append(event)

    with pytest.raises(UpstreamProtocolError) as caught:
        await consume()
    assert received  # the failure comes mid-way, after events went out
    assert b"[DONE]" not in b"".join(received)
    assert "cut off" in str(caught.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_stream_that_stalls_is_a_timeout(
    quick: Upstream, fake_openai: FakeProvider, fake_anthropic: FakeProvider, provider: str
) -> None:
    fake_for(provider, fake_openai, fake_anthropic).script("m", Fault(stall_after=2))
    with pytest.raises(UpstreamTimeoutError) as caught:
        await drain(quick, provider)
    assert "while reading" in str(caught.value)


async def test_anthropic_in_stream_overload_is_a_retryable_server_error(
    quick: Upstream, fake_anthropic: FakeProvider
) -> None:
    fake_anthropic.script("m", Fault(stream_error="overloaded_error"))
    with pytest.raises(UpstreamServerError) as caught:
        await drain(quick, "anthropic")
    assert caught.value.retryable is True
    assert caught.value.status is None
    assert "overloaded_error" in str(caught.value)


async def test_anthropic_in_stream_rate_limit_is_rate_limited(
    quick: Upstream, fake_anthropic: FakeProvider
) -> None:
    fake_anthropic.script("m", Fault(stream_error="rate_limit_error"))
    with pytest.raises(UpstreamRateLimitedError):
        await drain(quick, "anthropic")


async def test_openai_in_stream_error_event_is_a_server_error(
    quick: Upstream, fake_openai: FakeProvider
) -> None:
    fake_openai.script("m", Fault(stream_error="server_error"))
    with pytest.raises(UpstreamServerError) as caught:
        await drain(quick, "openai")
    assert "mid-stream (server_error)" in str(caught.value)


async def test_anthropic_overloaded_529_is_retryable(
    quick: Upstream, fake_anthropic: FakeProvider
) -> None:
    fake_anthropic.script("m", Fault(status=529))
    with pytest.raises(UpstreamServerError) as caught:
        await quick.complete(BODY, "anthropic", "m")
    assert (caught.value.status, caught.value.retryable) == (529, True)
    assert "overloaded_error" in str(caught.value)


async def test_a_2xx_that_is_not_a_chat_completion_is_a_protocol_error(
    transport: AiohttpTransport,
) -> None:
    def handler(request: Request) -> Response:
        return Response(200, json={"object": "list", "data": []})

    async with MockTransport(handler) as client:
        registry = ProviderRegistry.from_env(
            {"UNHARDCODED_PROVIDER_ODD_BASE_URL": "http://odd.invalid/v1"}
        )
        with pytest.raises(UpstreamProtocolError, match="no choices list"):
            await Upstream(client, registry).complete(BODY, "odd", "m")


async def test_every_error_is_a_router_error(quick: Upstream, fake_openai: FakeProvider) -> None:
    from router.core import RouterError

    fake_openai.script("m", Fault(status=500))
    with pytest.raises(UpstreamError) as caught:
        await quick.complete(BODY, "openai", "m")
    assert isinstance(caught.value, RouterError)


class Ticks:
    """A clock that advances one second per reading: latencies become exact counts."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_latency_comes_from_the_injected_clock_on_success_and_failure(
    transport: AiohttpTransport,
    registry: ProviderRegistry,
    fake_openai: FakeProvider,
    fake_anthropic: FakeProvider,
    provider: str,
) -> None:
    upstream = Upstream(transport, registry, clock=Ticks())
    response = await upstream.complete(BODY, provider, "m")
    assert response.latency_s == 1.0  # one reading before sending, one after the last byte

    fake_for(provider, fake_openai, fake_anthropic).script(
        "m", Fault(status=503), Fault(garbage=True), Fault(cut_after=2)
    )
    for expected in (UpstreamServerError, UpstreamProtocolError):
        with pytest.raises(expected) as caught:
            await upstream.complete(BODY, provider, "m")
        assert caught.value.latency_s == 1.0
    with pytest.raises(UpstreamProtocolError) as cut:
        await drain(upstream, provider)
    assert cut.value.latency_s is not None
    assert cut.value.latency_s >= 1.0


async def test_nothing_sent_means_no_latency(upstream: Upstream) -> None:
    with pytest.raises(UpstreamError) as caught:
        await upstream.complete({**BODY, "logprobs": True}, "anthropic", "m")
    assert caught.value.latency_s is None


async def test_a_body_that_fails_to_decode_is_a_protocol_error(
    transport: AiohttpTransport,
) -> None:
    async def answer(server: RawServer, index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(b"not gzip at all", headers="content-encoding: gzip\r\n"))
        return False

    async with serving(answer) as server:
        registry = ProviderRegistry.from_env({"UNHARDCODED_PROVIDER_ZIP_BASE_URL": server.url})
        with pytest.raises(UpstreamProtocolError, match="cut off mid-way"):
            await Upstream(transport, registry).complete(BODY, "zip", "m")


async def test_an_unusable_base_url_is_a_config_error(transport: AiohttpTransport) -> None:
    from router.services.upstream import (
        OpenAICompatibleAdapter,
        ProviderConfigError,
        UpstreamTarget,
    )

    target = UpstreamTarget(provider="odd", model="m", base_url="http://[::1")
    with pytest.raises(ProviderConfigError, match="not a valid URL"):
        await OpenAICompatibleAdapter(transport).complete(BODY, target, Credentials())


@pytest.mark.parametrize(
    ("kind", "events", "missing"),
    [
        (
            "openai_compatible",
            b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
            b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n',
            "no [DONE] event",
        ),
        (
            "anthropic",
            b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",'
            b'"model":"m","usage":{"input_tokens":1,"output_tokens":1}}}\n\n',
            "no message_stop event",
        ),
    ],
)
async def test_a_stream_that_ends_cleanly_but_early_is_a_protocol_error(
    kind: str, events: bytes, missing: str
) -> None:
    def handler(request: Request) -> Response:
        return Response(200, content=events, headers={"content-type": "text/event-stream"})

    registry = ProviderRegistry.from_env(
        {
            "UNHARDCODED_PROVIDER_SHORT_BASE_URL": "http://short.invalid",
            "UNHARDCODED_PROVIDER_SHORT_KIND": kind,
        }
    )
    async with MockTransport(handler) as client:
        upstream = Upstream(client, registry)
        received: list[bytes] = []

        async def consume() -> None:
            async with upstream.stream(STREAM, "short", "m") as stream:
                async for event in stream:
                    received.append(event)

        with pytest.raises(UpstreamProtocolError, match=re.escape(missing)):
            await consume()
    assert len(received) == 1  # the one event was passed on before the end was noticed
