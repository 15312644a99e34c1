"""OpenAI ⇄ Anthropic translation, pure: golden request/response/stream pairs, precise refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from router.services.upstream import (
    DEFAULT_MAX_TOKENS,
    StreamTranslator,
    UnsupportedRequestError,
    UpstreamProtocolError,
    UpstreamTarget,
    request_to_anthropic,
    response_to_openai,
)

TARGET = UpstreamTarget(provider="anthropic", model="claude-sonnet-4-6", kind="anthropic")

GOLDEN_REQUEST_IN: dict[str, Any] = {
    "model": "anything",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/sky.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_01",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "toolu_02",
                    "type": "function",
                    "function": {"name": "time", "arguments": ""},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01", "content": "18 C, cloudy"},
        {"role": "tool", "tool_call_id": "toolu_02", "content": [{"type": "text", "text": "noon"}]},
        {"role": "user", "content": "Thanks. Summarise."},
        {"role": "user", "content": "In one line."},
    ],
    "max_completion_tokens": 300,
    "temperature": 0.5,
    "top_p": 0.9,
    "stop": "END",
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        },
        {"type": "function", "function": {"name": "time"}},
    ],
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "user": "tenant-42",
    "n": 1,
    "stream": False,
}

GOLDEN_REQUEST_OUT: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "system": "You are terse.\n\nUse metric units.",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/sky.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_02", "name": "time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18 C, cloudy"},
                {"type": "tool_result", "tool_use_id": "toolu_02", "content": "noon"},
                {"type": "text", "text": "Thanks. Summarise."},
                {"type": "text", "text": "In one line."},
            ],
        },
    ],
    "max_tokens": 300,
    "temperature": 0.5,
    "top_p": 0.9,
    "stop_sequences": ["END"],
    "tools": [
        {
            "name": "weather",
            "description": "Current weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "time", "input_schema": {"type": "object", "properties": {}}},
    ],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "metadata": {"user_id": "tenant-42"},
}

GOLDEN_MESSAGE: dict[str, Any] = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [
        {"type": "thinking", "thinking": "The user wants...", "signature": "EqQB"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 100,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 5,
        "output_tokens": 42,
    },
}

GOLDEN_COMPLETION: dict[str, Any] = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "object": "chat.completion",
    "created": 1_764_000_000,
    "model": "claude-sonnet-4-6",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {
                        "id": "toolu_01",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
            "logprobs": None,
        }
    ],
    "usage": {"prompt_tokens": 125, "completion_tokens": 42, "total_tokens": 167},
}


def test_golden_request() -> None:
    assert request_to_anthropic(GOLDEN_REQUEST_IN, TARGET) == GOLDEN_REQUEST_OUT


def test_golden_response() -> None:
    translated = response_to_openai(GOLDEN_MESSAGE, TARGET, created=1_764_000_000)
    assert translated == GOLDEN_COMPLETION
    ChatCompletion.model_validate(translated)  # the official SDK's type accepts it


def test_minimal_request_gets_the_default_max_tokens_and_a_plain_string() -> None:
    out = request_to_anthropic({"messages": [{"role": "user", "content": "hi"}]}, TARGET)
    assert out == {
        "model": "claude-sonnet-4-6",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": DEFAULT_MAX_TOKENS,
    }


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", False, {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice(choice: Any, parallel: Any, expected: dict[str, Any]) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "tool_choice": choice}
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert request_to_anthropic(body, TARGET)["tool_choice"] == expected


@pytest.mark.parametrize(
    ("patch", "pointer"),
    [
        ({"n": 2}, "/n"),
        ({"logprobs": True}, "/logprobs"),
        ({"seed": 7}, "/seed"),
        ({"frequency_penalty": 0.5}, "/frequency_penalty"),
        ({"response_format": {"type": "json_object"}}, "/response_format"),
        ({"audio": {"voice": "alloy"}}, "/audio"),
        ({"policy": {"v": "sigma-pol/v1"}}, "/policy"),
        ({"temperature": 1.5}, "/temperature"),
        ({"max_tokens": 0}, "/max_tokens"),
        ({"max_completion_tokens": "many"}, "/max_completion_tokens"),
        ({"stop": 3}, "/stop"),
        ({"tool_choice": "sometimes"}, "/tool_choice"),
        ({"tools": [{"type": "code_interpreter"}]}, "/tools/0/type"),
        ({"messages": []}, "/messages"),
        ({"messages": [{"role": "function", "content": "x"}]}, "/messages/0/role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "/messages/0/content/0",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}
                        ],
                    }
                ]
            },
            "/messages/0/content/0/image_url/url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "t", "function": {"name": "f", "arguments": "[1]"}}],
                    }
                ]
            },
            "/messages/0/tool_calls/0/function/arguments",
        ),
        ({"messages": [{"role": "tool", "content": "r"}]}, "/messages/0/tool_call_id"),
        ({"messages": [{"role": "user", "content": ""}]}, "/messages/0/content"),
        ({"messages": [{"role": "assistant", "content": None}]}, "/messages/0/content"),
        ({"messages": [{"role": "user", "content": 5}]}, "/messages/0/content"),
        ({"messages": [{"role": "system", "content": 5}]}, "/messages/0/content"),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url"}]}]},
            "/messages/0/content/0",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "/messages/0/content/0/image_url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}],
                    }
                ]
            },
            "/messages/0/content/0/image_url/url",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"type": "retrieval"}]}]},
            "/messages/0/tool_calls/0",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "t", "function": {}}]}]},
            "/messages/0/tool_calls/0/function",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": {"id": "t"}}]},
            "/messages/0/tool_calls",
        ),
        ({"tools": {}}, "/tools"),
        ({"tools": [{"type": "function", "function": {}}]}, "/tools/0/function"),
        ({"parallel_tool_calls": "yes"}, "/parallel_tool_calls"),
        ({"top_p": 2}, "/top_p"),
        ({"top_p": True}, "/top_p"),
        ({"stop": ["a", 1]}, "/stop"),
        ({"user": 5}, "/user"),
    ],
)
def test_untranslatable_requests_are_refused_with_a_pointer(
    patch: dict[str, Any], pointer: str
) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], **patch}
    with pytest.raises(UnsupportedRequestError) as caught:
        request_to_anthropic(body, TARGET)
    assert caught.value.pointer == pointer
    assert caught.value.error_class == "unsupported"
    assert caught.value.retryable is False
    assert str(caught.value).startswith(f"anthropic/claude-sonnet-4-6: {pointer}: ")


def test_no_op_values_of_unsupported_fields_are_accepted() -> None:
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "n": 1,
        "logprobs": False,
        "presence_penalty": 0,
        "response_format": {"type": "text"},
        "store": False,
    }
    assert "n" not in request_to_anthropic(body, TARGET)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    message = {**GOLDEN_MESSAGE, "stop_reason": stop_reason}
    assert response_to_openai(message, TARGET, created=0)["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(
    "message",
    [
        [],
        {"type": "error", "error": {"type": "api_error"}},
        {**GOLDEN_MESSAGE, "content": "text"},
        {**GOLDEN_MESSAGE, "usage": {"input_tokens": "many", "output_tokens": 1}},
        {**GOLDEN_MESSAGE, "usage": None},
    ],
)
def test_malformed_messages_are_protocol_errors(message: Any) -> None:
    with pytest.raises(UpstreamProtocolError):
        response_to_openai(message, TARGET, created=0)


# The event sequence of Anthropic's streaming documentation (text, then a tool_use block).
GOLDEN_EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-6",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 472, "output_tokens": 2},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Okay"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ", let"}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_01T1x", "name": "weather", "input": {}},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"city": "San'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": ' Francisco"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {"type": "some_future_event", "detail": "ignored"},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 89},
    },
    {"type": "message_stop"},
]


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "claude-sonnet-4-6",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


GOLDEN_CHUNKS: list[dict[str, Any]] = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Okay"}),
    _chunk({"content": ", let"}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_01T1x",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "San'}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' Francisco"}'}}]}),
    _chunk({}, "tool_calls"),
    {
        **_chunk({}),
        "choices": [],
        "usage": {"prompt_tokens": 472, "completion_tokens": 89, "total_tokens": 561},
    },
]


def test_golden_stream() -> None:
    translator = StreamTranslator(TARGET, created=7, include_usage=True)
    out = [chunk for event in GOLDEN_EVENTS for chunk in translator.feed(event)]
    assert out == GOLDEN_CHUNKS
    for chunk in out:
        ChatCompletionChunk.model_validate(chunk)
    assert translator.done
    assert translator.finish_reason == "tool_calls"
    assert translator.usage is not None
    assert translator.usage.total_tokens == 561
    arguments = "".join(
        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for c in out
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    )
    assert json.loads(arguments) == {"city": "San Francisco"}


def test_stream_without_usage_request_has_no_usage_chunk() -> None:
    translator = StreamTranslator(TARGET, created=7, include_usage=False)
    out = [chunk for event in GOLDEN_EVENTS for chunk in translator.feed(event)]
    assert out == GOLDEN_CHUNKS[:-1]
    assert translator.usage is not None
    assert translator.usage.completion_tokens == 89


@pytest.mark.parametrize(
    "event",
    [
        {"no": "type"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}},
    ],
)
def test_stream_protocol_violations(event: dict[str, Any]) -> None:
    translator = StreamTranslator(TARGET, created=7, include_usage=False)
    with pytest.raises(UpstreamProtocolError):
        translator.feed(event)
