"""The Anthropic adapter against a real loopback server speaking the Messages API."""

from __future__ import annotations

import json

import anthropic
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from router.services.upstream import (
    ANTHROPIC_VERSION,
    DEFAULT_MAX_TOKENS,
    UnsupportedRequestError,
    Upstream,
    UpstreamClientError,
    Usage,
)
from tests.support.fake_providers import FAKE_ANTHROPIC_KEY, FakeProvider, Reply, ToolCall

BODY = {
    "model": "ignored",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour."},
    ],
}


async def test_complete_sends_messages_api_headers_and_translated_body(
    upstream: Upstream, fake_anthropic: FakeProvider
) -> None:
    response = await upstream.complete(BODY, "anthropic", "claude-test")

    sent = fake_anthropic.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == FAKE_ANTHROPIC_KEY
    assert sent.headers["anthropic-version"] == ANTHROPIC_VERSION
    assert "authorization" not in sent.headers
    assert sent.json() == {
        "model": "claude-test",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Name a colour."}],
        "max_tokens": DEFAULT_MAX_TOKENS,
    }
    completion = ChatCompletion.model_validate_json(response.content)
    assert completion.choices[0].message.content == "fake reply to: Name a colour."
    assert completion.object == "chat.completion"
    assert response.usage == Usage(prompt_tokens=5, completion_tokens=6)
    assert response.finish_reason == "stop"


async def test_complete_translates_tool_use_back(
    upstream: Upstream, fake_anthropic: FakeProvider
) -> None:
    fake_anthropic.script(
        "claude-test", Reply(text="Checking.", tool_calls=[ToolCall("weather", {"city": "Oslo"})])
    )
    response = await upstream.complete(BODY, "anthropic", "claude-test")
    message = ChatCompletion.model_validate(response.body).choices[0].message
    assert message.content == "Checking."
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.name == "weather"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Oslo"}
    assert response.finish_reason == "tool_calls"


async def test_stream_translates_to_openai_chunks_with_done(
    upstream: Upstream, fake_anthropic: FakeProvider
) -> None:
    fake_anthropic.script(
        "claude-test", Reply(text="Blue it is.", tool_calls=[ToolCall("paint", {"hex": "#00f"})])
    )
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    async with upstream.stream(body, "anthropic", "claude-test") as stream:
        events = [event async for event in stream]

    assert fake_anthropic.requests[-1].json()["stream"] is True
    assert events[-1] == b"data: [DONE]\n\n"
    parsed = [ChatCompletionChunk.model_validate_json(e[len(b"data: ") :]) for e in events[:-1]]
    text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)
    arguments = "".join(
        call.function.arguments or ""
        for c in parsed
        if c.choices and c.choices[0].delta.tool_calls
        for call in c.choices[0].delta.tool_calls
        if call.function is not None
    )
    assert text == "Blue it is."
    assert json.loads(arguments) == {"hex": "#00f"}
    assert parsed[-1].usage is not None
    assert parsed[-1].usage.completion_tokens == 3
    assert stream.usage == Usage(prompt_tokens=5, completion_tokens=3)
    assert stream.finish_reason == "tool_calls"


async def test_unsupported_field_is_refused_before_anything_is_sent(
    upstream: Upstream, fake_anthropic: FakeProvider
) -> None:
    with pytest.raises(UnsupportedRequestError) as caught:
        await upstream.complete({**BODY, "logprobs": True}, "anthropic", "claude-test")
    assert caught.value.pointer == "/logprobs"
    assert fake_anthropic.requests == []


async def test_a_bad_key_is_an_authentication_client_error(
    upstream: Upstream, fake_anthropic: FakeProvider
) -> None:
    fake_anthropic.api_key = "sk-ant-something-else"
    with pytest.raises(UpstreamClientError) as caught:
        await upstream.complete(BODY, "anthropic", "claude-test")
    assert caught.value.status == 401
    assert "authentication_error" in str(caught.value)


def test_the_fake_speaks_what_the_official_anthropic_sdk_expects(
    fake_anthropic: FakeProvider,
) -> None:
    """Guards the fixture itself: the official SDK parses its bodies and streams."""
    fake_anthropic.script("claude-test", Reply(text="Hi.", tool_calls=[ToolCall("f", {"a": 1})]))
    client = anthropic.Anthropic(
        api_key=FAKE_ANTHROPIC_KEY, base_url=fake_anthropic.base_url, max_retries=0
    )
    message = client.messages.create(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "hey"}]
    )
    assert [block.type for block in message.content] == ["text", "tool_use"]
    with client.messages.stream(
        model="claude-test", max_tokens=50, messages=[{"role": "user", "content": "one two"}]
    ) as stream:
        assert stream.get_final_text() == "fake reply to: one two"
        assert stream.get_final_message().usage.output_tokens == 5
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(
            api_key="wrong", base_url=fake_anthropic.base_url, max_retries=0
        ).messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
