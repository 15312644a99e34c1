"""The OpenAI-compatible adapter against a real loopback server speaking Chat Completions."""

from __future__ import annotations

import asyncio
import json

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import SecretStr

from router.services.upstream import (
    Upstream,
    UpstreamClientError,
    UpstreamRateLimitedError,
    UpstreamServerError,
    UpstreamTimeoutError,
    Usage,
)
from tests.support.fake_providers import FAKE_OPENAI_KEY, FakeProvider, Fault, Reply, ToolCall

BODY = {
    "model": "what-the-caller-asked-for",
    "messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "temperature": 0.2,
}


def chunks(events: list[bytes]) -> list[dict]:
    assert events[-1] == b"data: [DONE]\n\n"
    out = []
    for event in events[:-1]:
        assert event.startswith(b"data: ")
        assert event.endswith(b"\n\n")
        out.append(json.loads(event[len(b"data: ") :]))
    return out


async def collect(upstream: Upstream, body: dict, model: str = "gpt-test") -> tuple:
    async with upstream.stream(body, "openai", model) as stream:
        events = [event async for event in stream]
    return events, stream


async def test_complete_rewrites_the_model_and_sends_the_bearer_key(
    upstream: Upstream, fake_openai: FakeProvider
) -> None:
    response = await upstream.complete(BODY, "openai", "gpt-test")

    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {FAKE_OPENAI_KEY}"
    assert sent.json() == {**BODY, "model": "gpt-test"}
    assert response.status == 200
    assert json.loads(response.content) == response.body  # the upstream's bytes, unchanged
    assert ChatCompletion.model_validate(response.body).choices[0].message.content == (
        "fake reply to: What is the capital of France?"
    )
    assert response.usage == Usage(prompt_tokens=8, completion_tokens=9)
    assert response.finish_reason == "stop"
    assert response.latency_s > 0


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [None, 2**64 + 1, float("inf"), "\ud800", "é ✓ \u2028", _nested(300), {"null": "null"}],
    ids=["null", "beyond-64-bits", "infinity", "lone-surrogate", "unicode", "deep", "null-text"],
)
async def test_the_body_goes_upstream_as_sent_whatever_json_it_holds(
    upstream: Upstream, fake_openai: FakeProvider, value: object
) -> None:
    await upstream.complete({**BODY, "user": value}, "openai", "gpt-test")
    assert fake_openai.requests[-1].json() == {**BODY, "model": "gpt-test", "user": value}


async def test_complete_drops_stream_fields(upstream: Upstream, fake_openai: FakeProvider) -> None:
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    await upstream.complete(body, "openai", "gpt-test")
    sent = fake_openai.requests[-1].json()
    assert "stream" not in sent
    assert "stream_options" not in sent


async def test_tenant_key_replaces_the_operator_key(
    upstream: Upstream, fake_openai: FakeProvider
) -> None:
    fake_openai.api_key = "sk-tenant-own-key-5555"
    await upstream.complete(
        BODY, "openai", "gpt-test", tenant_key=SecretStr("sk-tenant-own-key-5555")
    )
    assert fake_openai.requests[-1].headers["authorization"] == "Bearer sk-tenant-own-key-5555"


async def test_tool_calls_pass_through(upstream: Upstream, fake_openai: FakeProvider) -> None:
    fake_openai.script(
        "gpt-test", Reply(text="", tool_calls=[ToolCall("weather", {"city": "Paris"})])
    )
    response = await upstream.complete(BODY, "openai", "gpt-test")
    message = ChatCompletion.model_validate(response.body).choices[0].message
    assert message.tool_calls is not None
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}
    assert response.finish_reason == "tool_calls"


async def test_stream_requests_usage_and_hides_it_when_the_caller_did_not_ask(
    upstream: Upstream, fake_openai: FakeProvider
) -> None:
    events, stream = await collect(upstream, {**BODY, "stream": True})

    assert fake_openai.requests[-1].json()["stream_options"] == {"include_usage": True}
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks(events)]
    assert all(c.choices for c in parsed)  # no usage-only chunk reaches this caller
    assert "".join(c.choices[0].delta.content or "" for c in parsed) == (
        "fake reply to: What is the capital of France?"
    )
    assert stream.usage == Usage(prompt_tokens=8, completion_tokens=9)
    assert stream.finish_reason == "stop"
    assert stream.status == 200
    assert stream.ttfb_s is not None
    assert stream.latency_s is not None
    assert stream.latency_s >= stream.ttfb_s


async def test_stream_forwards_the_usage_chunk_when_asked(
    upstream: Upstream, fake_openai: FakeProvider
) -> None:
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    events, stream = await collect(upstream, body)
    last = ChatCompletionChunk.model_validate(chunks(events)[-1])
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens == 17 == stream.usage.total_tokens  # type: ignore[union-attr]


async def test_stream_events_are_the_upstream_bytes(
    upstream: Upstream, fake_openai: FakeProvider
) -> None:
    events, _ = await collect(upstream, {**BODY, "stream": True})
    assert events[1].startswith(
        b'data: {"id": "chatcmpl-fake123", "object": "chat.completion.chunk"'
    )


@pytest.mark.parametrize(
    ("status", "error_type", "error_class", "retryable"),
    [
        (429, UpstreamRateLimitedError, "rate_limited", True),
        (500, UpstreamServerError, "server_error", True),
        (503, UpstreamServerError, "server_error", True),
        (408, UpstreamTimeoutError, "timeout", True),
        (409, UpstreamClientError, "client_error", True),
        (400, UpstreamClientError, "client_error", False),
        (404, UpstreamClientError, "client_error", False),
        (422, UpstreamClientError, "client_error", False),
    ],
)
async def test_status_codes_are_classified(
    upstream: Upstream,
    fake_openai: FakeProvider,
    status: int,
    error_type: type,
    error_class: str,
    retryable: bool,
) -> None:
    fake_openai.script("gpt-test", Fault(status=status))
    with pytest.raises(error_type) as caught:
        await upstream.complete(BODY, "openai", "gpt-test")
    assert caught.value.error_class == error_class
    assert caught.value.retryable is retryable
    assert caught.value.status == status
    assert caught.value.detail == "scripted failure"
    assert str(status) in str(caught.value)


async def test_streaming_status_errors_raise_before_any_event(
    upstream: Upstream, fake_openai: FakeProvider
) -> None:
    fake_openai.script("gpt-test", Fault(status=429, headers={"retry-after": "7"}))
    with pytest.raises(UpstreamRateLimitedError) as caught:
        async with upstream.stream({**BODY, "stream": True}, "openai", "gpt-test"):
            pytest.fail("the stream must not open")
    assert caught.value.retry_after == 7.0


async def test_should_retry_header_overrides_the_rule(
    upstream: Upstream, fake_openai: FakeProvider
) -> None:
    fake_openai.script(
        "gpt-test",
        Fault(status=500, headers={"x-should-retry": "false"}),
        Fault(status=400, headers={"x-should-retry": "true"}),
    )
    with pytest.raises(UpstreamServerError) as server:
        await upstream.complete(BODY, "openai", "gpt-test")
    with pytest.raises(UpstreamClientError) as client:
        await upstream.complete(BODY, "openai", "gpt-test")
    assert server.value.retryable is False
    assert client.value.retryable is True


async def test_wrong_key_is_a_client_error(upstream: Upstream) -> None:
    with pytest.raises(UpstreamClientError) as caught:
        await upstream.complete(BODY, "openai", "gpt-test", tenant_key=SecretStr("sk-wrong-0000"))
    assert caught.value.status == 401
    assert "invalid_api_key" in str(caught.value)
    assert caught.value.retryable is False


async def test_concurrent_calls_through_one_client_do_not_mix(
    upstream: Upstream, fake_openai: FakeProvider, fake_anthropic: FakeProvider
) -> None:
    async def one(i: int, provider: str, streaming: bool) -> tuple[str, Usage | None]:
        body = {"messages": [{"role": "user", "content": " ".join(["w"] * i) + f" n{i}"}]}
        if not streaming:
            response = await upstream.complete(body, provider, "m")
            return response.body["choices"][0]["message"]["content"], response.usage
        async with upstream.stream({**body, "stream": True}, provider, "m") as stream:
            parts = [json.loads(e[6:]) for e in [e async for e in stream][:-1]]
        text = "".join(p["choices"][0]["delta"].get("content") or "" for p in parts)
        return text, stream.usage

    cases = [(i, p, s) for i in range(1, 9) for p in ("openai", "anthropic") for s in (False, True)]
    results = await asyncio.gather(*(one(*case) for case in cases))
    for (i, _, _), (text, usage) in zip(cases, results, strict=True):
        assert text.endswith(f" n{i}")
        assert usage == Usage(prompt_tokens=i + 1, completion_tokens=i + 4)
