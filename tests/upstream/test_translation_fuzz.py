"""Any JSON at all, in requests or upstream answers, gives a typed error, never a crash.

The gateway turns `UnsupportedRequestError` into a 4xx and protocol errors into a failed attempt;
anything else (a KeyError, a TypeError) would be a 500, which the gateway must never send.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.services.upstream import (
    Credentials,
    EchoAdapter,
    StreamTranslator,
    UnsupportedRequestError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTarget,
    request_to_anthropic,
    response_to_openai,
)
from router.services.upstream._openai import usage_from_openai

_NO_KEY = Credentials()
TARGET = UpstreamTarget(provider="anthropic", model="claude", kind="anthropic")

words = st.sampled_from(
    ["message_start", "content_block_start", "content_block_delta", "message_delta",
     "message_stop", "error", "text_delta", "input_json_delta", "tool_use", "text", "image_url",
     "function", "message", "auto", "required", "data:image/png;base64,AA", "https://x/y.png"]
)  # fmt: skip
scalars = (
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2) | st.text(max_size=5) | words
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
known = st.sampled_from(
    ["role", "content", "type", "text", "image_url", "url", "tool_calls", "function", "name",
     "arguments", "tool_call_id", "id", "parameters", "input", "usage", "message", "delta",
     "index", "content_block", "input_tokens", "output_tokens", "error", "stop_reason"]
)  # fmt: skip
roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", 3, None])
shaped = st.recursive(
    scalars | roles,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(known, inner, max_size=4),
    max_leaves=16,
)
request_fields = st.sampled_from(
    ["messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "tools",
     "tool_choice", "parallel_tool_calls", "user", "n", "logprobs", "seed", "response_format",
     "stream", "stream_options", "frobnicate"]
)  # fmt: skip
requests = st.dictionaries(request_fields, shaped | json_values, max_size=6)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(requests)
def test_any_request_translates_or_is_refused(body: dict[str, Any]) -> None:
    try:
        out = request_to_anthropic(body, TARGET)
    except UnsupportedRequestError as error:
        refused_at = error.pointer
    else:
        assert out["model"] == "claude"
        assert isinstance(out["max_tokens"], int)
        return
    assert refused_at.lstrip("/").split("/")[0] in {*body, "messages"}


@FUZZ
@given(st.fixed_dictionaries({"messages": st.lists(shaped, min_size=1, max_size=4)}))
def test_any_message_list_translates_or_is_refused(body: dict[str, Any]) -> None:
    try:
        request_to_anthropic(body, TARGET)
    except UnsupportedRequestError as error:
        refused_at = error.pointer
    else:
        return
    assert refused_at.startswith("/messages")


@FUZZ
@given(shaped | json_values)
def test_any_upstream_message_translates_or_is_a_protocol_error(message: Any) -> None:
    with contextlib.suppress(UpstreamProtocolError):
        response_to_openai(message, TARGET, created=0)


@FUZZ
@given(st.lists(shaped | json_values, max_size=6))
def test_any_upstream_event_sequence_translates_or_fails_typed(events: list[Any]) -> None:
    translator = StreamTranslator(TARGET, created=0, include_usage=True)
    with contextlib.suppress(UpstreamError):
        for event in events:
            translator.feed(event)


@FUZZ
@given(shaped | json_values)
def test_any_usage_object_parses_or_is_a_protocol_error(usage: Any) -> None:
    with contextlib.suppress(UpstreamProtocolError):
        usage_from_openai(usage, TARGET)


@FUZZ
@given(requests)
async def test_echo_answers_or_refuses_anything(body: dict[str, Any]) -> None:
    try:
        response = await EchoAdapter().complete(body, TARGET, credentials=_NO_KEY)
    except UnsupportedRequestError:
        return
    assert response.body["choices"][0]["message"]["content"].startswith("[echo provider")


def test_a_json_delta_with_an_unhashable_index_is_a_protocol_error() -> None:
    translator = StreamTranslator(TARGET, created=0, include_usage=False)
    translator.feed({"type": "message_start", "message": {"usage": {"input_tokens": 1}}})
    delta = {"type": "input_json_delta", "partial_json": "{"}
    try:
        translator.feed({"type": "content_block_delta", "index": [0], "delta": delta})
    except UpstreamProtocolError as error:
        assert "not a tool_use" in str(error)  # noqa: PT017 - the exact class is the point
    else:
        raise AssertionError("expected a protocol error")
