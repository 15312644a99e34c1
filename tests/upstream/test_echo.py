"""The local echo provider: no network, deterministic, and it says it is not a real model."""

from __future__ import annotations

import json

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from router.services.upstream import (
    DEFAULT_PROVIDERS,
    ECHO_PREFIX,
    MockTransport,
    ProviderRegistry,
    Request,
    Response,
    UnsupportedRequestError,
    Upstream,
    Usage,
)

BODY = {
    "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": [{"type": "text", "text": "hello echo"}]},
    ]
}


def no_network(request: Request) -> Response:
    raise AssertionError(f"echo must not use the network: {request.url}")


def echo_upstream() -> Upstream:
    client = MockTransport(no_network)
    return Upstream(client, ProviderRegistry(DEFAULT_PROVIDERS))


async def test_echo_answers_the_last_user_message_and_says_it_is_not_real() -> None:
    response = await echo_upstream().complete(BODY, "echo", "echo-1")
    completion = ChatCompletion.model_validate_json(response.content)
    assert completion.choices[0].message.content == f"{ECHO_PREFIX} hello echo"
    assert completion.model == "echo-1"
    assert completion.system_fingerprint == "echo-not-a-real-provider"
    # prompt: 3 + 2 + 2 + 2 words; completion: 6 prefix words + 2
    assert response.usage == Usage(prompt_tokens=9, completion_tokens=8)
    assert completion.usage is not None
    assert completion.usage.total_tokens == 17


async def test_echo_is_deterministic() -> None:
    first = await echo_upstream().complete(BODY, "echo", "echo-1")
    second = await echo_upstream().complete(json.loads(json.dumps(BODY)), "echo", "echo-1")
    assert first.content == second.content


async def test_echo_honours_max_tokens_in_echoed_words_but_always_keeps_its_marker() -> None:
    response = await echo_upstream().complete({**BODY, "max_tokens": 1}, "echo", "echo-1")
    assert response.body["choices"][0]["message"]["content"] == f"{ECHO_PREFIX} hello"
    assert response.finish_reason == "length"
    assert response.usage is not None
    assert response.usage.completion_tokens == len(ECHO_PREFIX.split()) + 1


@pytest.mark.parametrize("limit", [True, -1, 2.5, "3"])
async def test_echo_refuses_a_max_tokens_that_is_not_a_non_negative_integer(limit: object) -> None:
    with pytest.raises(UnsupportedRequestError, match="max_tokens must be a non-negative integer"):
        await echo_upstream().complete({**BODY, "max_tokens": limit}, "echo", "echo-1")


async def test_echo_streams_word_by_word_with_usage_when_asked() -> None:
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    async with echo_upstream().stream(body, "echo", "echo-1") as stream:
        events = [event async for event in stream]
    assert events[-1] == b"data: [DONE]\n\n"
    chunks = [ChatCompletionChunk.model_validate_json(e[6:]) for e in events[:-1]]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"{ECHO_PREFIX} hello echo"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
    assert stream.usage == Usage(prompt_tokens=9, completion_tokens=8)
    assert stream.finish_reason == "stop"


async def test_echo_stream_hides_usage_unless_asked() -> None:
    async with echo_upstream().stream({**BODY, "stream": True}, "echo", "echo-1") as stream:
        events = [event async for event in stream]
    assert all(json.loads(e[6:])["choices"] for e in events[:-1])
    assert stream.usage is not None


async def test_echo_refuses_a_request_without_messages() -> None:
    upstream = echo_upstream()
    for body in ({}, {"messages": "hi"}):
        with pytest.raises(UnsupportedRequestError) as caught:
            await upstream.complete(body, "echo", "echo-1")
        assert caught.value.pointer == "/messages"
