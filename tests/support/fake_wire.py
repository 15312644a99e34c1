"""Wire formats of the fake providers: OpenAI Chat Completions and Anthropic Messages, as the real
services send them (bodies, SSE streams, error shapes). Used by `fake_providers`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """A tool call the fake model makes."""

    name: str
    arguments: Mapping[str, Any]
    id: str = "call_fake_1"


@dataclass(frozen=True)
class Reply:
    """What the fake model answers. `text=None` means `fake reply to: <last user text>`."""

    text: str | None = None
    tool_calls: Sequence[ToolCall] = ()
    finish: str | None = None  # finish_reason (OpenAI) / stop_reason (Anthropic); derived if None
    prompt_tokens: int | None = None  # derived from the request's words if None
    completion_tokens: int | None = None


@dataclass(frozen=True)
class Fault:
    """A scripted failure for one call.

    status: answer with this HTTP status and an error body in the provider's shape.
    hang: send nothing until the client gives up (closes) or the server stops.
    drop: close the connection right after reading the request, without any response.
    garbage: 200 with a truncated JSON body, or a stream event that is not JSON.
    cut_after: streams: close the connection after this many events, with no terminator.
    stall_after: streams: after this many events send nothing more (until the client gives up).
    stream_error: streams: after the first event, send an in-stream error of this type.
    delay_s: wait this long after reading the request before answering (a slow model).
    """

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False
    drop: bool = False
    garbage: bool = False
    cut_after: int | None = None
    stall_after: int | None = None
    stream_error: str | None = None
    delay_s: float = 0.0


Step = Fault | Reply


def words(text: str) -> int:
    return len(text.split())


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", p.get("content", ""))) for p in content if isinstance(p, dict)
        )
    return ""


def reply_text(reply: Reply, messages: Sequence[Any]) -> str:
    if reply.text is not None:
        return reply.text
    last = next(
        (_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    return f"fake reply to: {last}"


def prompt_words(body: Mapping[str, Any]) -> int:
    total = words(_text(body.get("system")))
    for m in body.get("messages", []):
        total += words(_text(m.get("content")))
    return total


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {payload}\n\n".encode()


# --- OpenAI ------------------------------------------------------------------------------------

_OPENAI_ERRORS = {
    400: ("invalid_request_error", "invalid_value"),
    401: ("invalid_request_error", "invalid_api_key"),
    404: ("invalid_request_error", "model_not_found"),
    409: ("invalid_request_error", "conflict"),
    429: ("requests", "rate_limit_exceeded"),
}


def openai_error(status: int, message: str) -> dict[str, Any]:
    kind, code = _OPENAI_ERRORS.get(status, ("server_error", "server_error"))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _openai_usage(body: Mapping[str, Any], reply: Reply, text: str) -> dict[str, int]:
    prompt = reply.prompt_tokens if reply.prompt_tokens is not None else prompt_words(body)
    completion = reply.completion_tokens if reply.completion_tokens is not None else words(text)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def openai_completion(body: Mapping[str, Any], reply: Reply) -> dict[str, Any]:
    text = reply_text(reply, body["messages"])
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in reply.tool_calls
        ]
    finish = reply.finish or ("tool_calls" if reply.tool_calls else "stop")
    return {
        "id": "chatcmpl-fake123",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": _openai_usage(body, reply, text),
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


def openai_stream(body: Mapping[str, Any], reply: Reply) -> Iterator[bytes]:
    text = reply_text(reply, body["messages"])
    options = body.get("stream_options") or {}
    with_usage = options.get("include_usage") is True

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": "chatcmpl-fake123",
            "object": "chat.completion.chunk",
            "created": 1_764_000_000,
            "model": body["model"],
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if with_usage:
            data["usage"] = None
        return sse(data)

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for i, word in enumerate(text.split()):
        yield chunk({"content": word if i == 0 else f" {word}"})
    for i, call in enumerate(reply.tool_calls):
        head = {"index": i, "id": call.id, "type": "function"}
        yield chunk({"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]})
        arguments = json.dumps(call.arguments)
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    yield chunk({}, reply.finish or ("tool_calls" if reply.tool_calls else "stop"))
    if with_usage:
        final = json.loads(chunk({})[len(b"data: ") :])
        final["choices"] = []
        final["usage"] = _openai_usage(body, reply, text)
        yield sse(final)
    yield sse("[DONE]")


# --- Anthropic ---------------------------------------------------------------------------------

_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, message: str, kind: str | None = None) -> dict[str, Any]:
    kind = kind or _ANTHROPIC_ERRORS.get(status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_fake",
    }


def _anthropic_usage(body: Mapping[str, Any], reply: Reply, text: str) -> tuple[int, int]:
    prompt = reply.prompt_tokens if reply.prompt_tokens is not None else prompt_words(body)
    completion = reply.completion_tokens if reply.completion_tokens is not None else words(text)
    return prompt, completion


def anthropic_message(body: Mapping[str, Any], reply: Reply) -> dict[str, Any]:
    text = reply_text(reply, body["messages"])
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)}
        for c in reply.tool_calls
    ]
    prompt, completion = _anthropic_usage(body, reply, text)
    return {
        "id": "msg_fake123",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": reply.finish or ("tool_use" if reply.tool_calls else "end_turn"),
        "stop_sequence": None,
        "usage": {
            "input_tokens": prompt,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": completion,
            "service_tier": "standard",
        },
    }


def anthropic_stream(body: Mapping[str, Any], reply: Reply) -> Iterator[bytes]:
    message = anthropic_message(body, reply)
    _, completion = _anthropic_usage(body, reply, reply_text(reply, body["messages"]))
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {**message["usage"], "output_tokens": 1}
    yield sse({"type": "message_start", "message": start}, "message_start")
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            yield sse(
                {"type": "content_block_start", "index": index, "content_block": opening},
                "content_block_start",
            )
            if index == 0:
                yield sse({"type": "ping"}, "ping")
            for i, word in enumerate(block["text"].split()):
                delta = {"type": "text_delta", "text": word if i == 0 else f" {word}"}
                yield sse(
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    "content_block_delta",
                )
        else:
            opening = {**block, "input": {}}
            yield sse(
                {"type": "content_block_start", "index": index, "content_block": opening},
                "content_block_start",
            )
            arguments = json.dumps(block["input"])
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield sse(
                    {"type": "content_block_delta", "index": index, "delta": delta},
                    "content_block_delta",
                )
        yield sse({"type": "content_block_stop", "index": index}, "content_block_stop")
    yield sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": completion},
        },
        "message_delta",
    )
    yield sse({"type": "message_stop"}, "message_stop")
