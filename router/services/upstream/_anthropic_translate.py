"""OpenAI Chat Completions ⇄ Anthropic Messages: pure translation of requests, responses, events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from router.services.upstream._errors import (
    UnsupportedRequestError,
    UpstreamError,
    UpstreamProtocolError,
    error_for_status,
)
from router.services.upstream._types import RequestBody, UpstreamTarget, Usage

#: Anthropic requires `max_tokens`; OpenAI does not. Used when the request has neither
#: `max_completion_tokens` nor `max_tokens` (an adapter argument changes it).
DEFAULT_MAX_TOKENS = 4096

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
# Fields translated below, and fields accepted only at their no-op value (anything else is refused).
_TRANSLATED = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
    "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls", "user",
}  # fmt: skip
_NO_OP_VALUES: dict[str, tuple[Any, ...]] = {
    "n": (None, 1),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "presence_penalty": (None, 0),
    "frequency_penalty": (None, 0),
    "logit_bias": (None, {}),
    "seed": (None,),
    "response_format": (None, {"type": "text"}),
    "store": (None, False),
    "metadata": (None, {}),
    "service_tier": (None, "auto"),
    "modalities": (None, ["text"]),
    "reasoning_effort": (None,),
}
# Anthropic in-stream error types, as the HTTP status the same error has outside a stream.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def finish_reason(stop_reason: object) -> str | None:
    """OpenAI's `finish_reason` for an Anthropic `stop_reason` (unknown reasons become `stop`)."""
    if stop_reason is None:
        return None
    return _FINISH_REASONS.get(str(stop_reason), "stop")


class _Translator:
    def __init__(self, target: UpstreamTarget) -> None:
        self.target = target

    def refuse(self, pointer: str, why: str) -> UnsupportedRequestError:
        return UnsupportedRequestError(
            why, provider=self.target.provider, model=self.target.model, pointer=pointer
        )

    def text_of(self, content: Any, pointer: str, *, allow: tuple[str, ...] = ("text",)) -> str:
        """The text of a string or of a list of text parts."""
        if isinstance(content, str):
            return content
        if not isinstance(content, list):
            raise self.refuse(pointer, "content must be a string or a list of parts")
        texts = []
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in allow:
                raise self.refuse(f"{pointer}/{j}", f"part type {kind!r} is not supported here")
            texts.append(str(part.get(kind, "")))
        return "".join(texts)

    def user_blocks(self, content: Any, pointer: str) -> list[dict[str, Any]]:
        if isinstance(content, str):
            return [{"type": "text", "text": content}] if content else []
        if not isinstance(content, list):
            raise self.refuse(pointer, "content must be a string or a list of parts")
        blocks: list[dict[str, Any]] = []
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part, dict) and isinstance(part.get("text"), str):
                if part["text"]:
                    blocks.append({"type": "text", "text": part["text"]})
            elif kind == "image_url" and isinstance(part, dict):
                blocks.append(self.image(part.get("image_url"), f"{pointer}/{j}/image_url"))
            else:
                raise self.refuse(
                    f"{pointer}/{j}", f"part type {kind!r} cannot be sent to the Messages API"
                )
        return blocks

    def image(self, image: Any, pointer: str) -> dict[str, Any]:
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str):
            raise self.refuse(pointer, "image_url needs a url string")
        if url.startswith(("http://", "https://")):
            return {"type": "image", "source": {"type": "url", "url": url}}
        header, sep, data = url.partition(",")
        media = header.removeprefix("data:").removesuffix(";base64")
        if not (url.startswith("data:") and header.endswith(";base64") and sep):
            raise self.refuse(f"{pointer}/url", "images must be http(s) or base64 data: URLs")
        if media not in _IMAGE_TYPES:
            raise self.refuse(
                f"{pointer}/url", f"image type {media!r} not accepted ({', '.join(_IMAGE_TYPES)})"
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}

    def tool_use(self, call: Any, pointer: str) -> dict[str, Any]:
        function = call.get("function") if isinstance(call, dict) else None
        if not (isinstance(call, dict) and call.get("type", "function") == "function"):
            raise self.refuse(pointer, "only function tool calls can be sent")
        if not (isinstance(function, dict) and isinstance(function.get("name"), str)):
            raise self.refuse(f"{pointer}/function", "a tool call needs a function name")
        arguments = function.get("arguments") or "{}"
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise self.refuse(f"{pointer}/function/arguments", "arguments must be a JSON object")
        return {"type": "tool_use", "id": call.get("id"), "name": function["name"], "input": parsed}

    def messages(self, messages: Any) -> tuple[list[str], list[dict[str, Any]]]:
        if not isinstance(messages, list) or not messages:
            raise self.refuse("/messages", "messages must be a non-empty list")
        system: list[str] = []
        turns: list[dict[str, Any]] = []
        for i, message in enumerate(messages):
            pointer = f"/messages/{i}"
            role = message.get("role") if isinstance(message, dict) else None
            content = message.get("content") if isinstance(message, dict) else None
            if role in ("system", "developer"):
                system.append(self.text_of(content, f"{pointer}/content"))
                continue
            if role == "user":
                blocks = self.user_blocks(content, f"{pointer}/content")
            elif role == "assistant":
                blocks = []
                if content is not None:
                    text = self.text_of(content, f"{pointer}/content", allow=("text", "refusal"))
                    blocks = [{"type": "text", "text": text}] if text else []
                calls = message.get("tool_calls") or []
                if not isinstance(calls, list):
                    raise self.refuse(f"{pointer}/tool_calls", "tool_calls must be a list")
                blocks += [
                    self.tool_use(c, f"{pointer}/tool_calls/{j}") for j, c in enumerate(calls)
                ]
            elif role == "tool":
                call_id = message.get("tool_call_id")
                if not isinstance(call_id, str):
                    raise self.refuse(
                        f"{pointer}/tool_call_id", "a tool message needs tool_call_id"
                    )
                text = self.text_of(content, f"{pointer}/content")
                blocks = [{"type": "tool_result", "tool_use_id": call_id, "content": text}]
                role = "user"
            else:
                raise self.refuse(f"{pointer}/role", f"role {role!r} is not supported")
            if not blocks:
                raise self.refuse(
                    f"{pointer}/content", "Anthropic refuses a message without content"
                )
            # Anthropic wants alternating turns: consecutive same-role messages become one turn.
            if turns and turns[-1]["role"] == role:
                turns[-1]["content"] += blocks
            else:
                turns.append({"role": role, "content": blocks})
        for turn in turns:
            blocks = turn["content"]
            if len(blocks) == 1 and blocks[0]["type"] == "text":
                turn["content"] = blocks[0]["text"]
        return system, turns

    def tools(self, tools: Any) -> list[dict[str, Any]]:
        if not isinstance(tools, list):
            raise self.refuse("/tools", "tools must be a list")
        out = []
        for j, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not (isinstance(tool, dict) and tool.get("type") == "function"):
                raise self.refuse(f"/tools/{j}/type", "only function tools can be sent")
            if not (isinstance(function, dict) and isinstance(function.get("name"), str)):
                raise self.refuse(f"/tools/{j}/function", "a function tool needs a name")
            converted: dict[str, Any] = {"name": function["name"]}
            if isinstance(function.get("description"), str):
                converted["description"] = function["description"]
            parameters = function.get("parameters")
            converted["input_schema"] = (
                parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}
            )
            out.append(converted)
        return out

    def tool_choice(self, choice: Any, parallel: Any) -> dict[str, Any] | None:
        converted: dict[str, Any] | None
        if choice is None:
            converted = None
        elif choice in ("auto", "none"):
            converted = {"type": choice}
        elif choice == "required":
            converted = {"type": "any"}
        elif (
            isinstance(choice, dict)
            and choice.get("type") == "function"
            and isinstance(choice.get("function"), dict)
            and isinstance(choice["function"].get("name"), str)
        ):
            converted = {"type": "tool", "name": choice["function"]["name"]}
        else:
            raise self.refuse("/tool_choice", "expected auto, none, required or a function choice")
        if parallel is False:
            converted = converted or {"type": "auto"}
            if converted["type"] != "none":
                converted["disable_parallel_tool_use"] = True
        elif parallel not in (None, True):
            raise self.refuse("/parallel_tool_calls", "must be a boolean")
        return converted


def request_to_anthropic(
    body: RequestBody, target: UpstreamTarget, *, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat request (raises `UnsupportedRequestError`)."""
    t = _Translator(target)
    for field, value in body.items():
        if field in _TRANSLATED:
            continue
        if field not in _NO_OP_VALUES:
            raise t.refuse(f"/{field}", "field is not supported by the Anthropic Messages API")
        if value not in _NO_OP_VALUES[field]:
            raise t.refuse(f"/{field}", f"value {value!r} is not supported by Anthropic")
    system, turns = t.messages(body.get("messages"))
    out: dict[str, Any] = {"model": target.model}
    if system:
        out["system"] = "\n\n".join(system)
    out["messages"] = turns
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = default_max_tokens
    if not (isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0):
        field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        raise t.refuse(f"/{field}", "must be a positive integer")
    out["max_tokens"] = max_tokens
    temperature = body.get("temperature")
    if temperature is not None:
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not 0 <= temperature <= 1
        ):
            raise t.refuse("/temperature", "Anthropic accepts a temperature between 0 and 1")
        out["temperature"] = temperature
    top_p = body.get("top_p")
    if top_p is not None:
        if isinstance(top_p, bool) or not isinstance(top_p, int | float) or not 0 <= top_p <= 1:
            raise t.refuse("/top_p", "top_p must be a number between 0 and 1")
        out["top_p"] = top_p
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if stop:
            out["stop_sequences"] = stop
    elif stop is not None:
        raise t.refuse("/stop", "stop must be a string or a list of strings")
    if body.get("tools") is not None:
        out["tools"] = t.tools(body["tools"])
    choice = t.tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None:
        out["tool_choice"] = choice
    user = body.get("user")
    if isinstance(user, str):
        out["metadata"] = {"user_id": user}
    elif user is not None:
        raise t.refuse("/user", "user must be a string")
    return out


def usage_from_anthropic(value: Any, target: UpstreamTarget) -> Usage:
    """OpenAI-style usage: prompt = input + cache creation + cache read tokens."""
    if not isinstance(value, dict):
        raise UpstreamProtocolError(
            "message has no usage", provider=target.provider, model=target.model
        )
    counts = [
        value.get(k) or 0
        for k in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        )
    ]
    if not all(isinstance(c, int) and c >= 0 for c in counts):
        raise UpstreamProtocolError(
            "message has a malformed usage object", provider=target.provider, model=target.model
        )
    return Usage(prompt_tokens=sum(counts[:3]), completion_tokens=counts[3])


def response_to_openai(message: Any, target: UpstreamTarget, *, created: int) -> dict[str, Any]:
    """A `chat.completion` for an Anthropic `message` (text, tool_use; thinking dropped)."""
    if not (isinstance(message, dict) and message.get("type") == "message"):
        raise UpstreamProtocolError(
            "response is not a Messages API message", provider=target.provider, model=target.model
        )
    blocks = message.get("content")
    if not isinstance(blocks, list):
        raise UpstreamProtocolError(
            "message has no content list", provider=target.provider, model=target.model
        )
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block, dict):
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use" and isinstance(block, dict):
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": json.dumps(block.get("input", {}), ensure_ascii=False),
                    },
                }
            )
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        reply["tool_calls"] = calls
    usage = usage_from_anthropic(message.get("usage"), target)
    return {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model", target.model),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": finish_reason(message.get("stop_reason")),
                "logprobs": None,
            }
        ],
        "usage": usage.as_openai(),
    }


def stream_error(data: Mapping[str, Any], target: UpstreamTarget) -> UpstreamError:
    """The typed error for an in-stream `error` event, classified like the same error over HTTP."""
    error = data.get("error")
    given = error.get("type") if isinstance(error, dict) else None
    # Only documented types are named (never free text from the stream); others count as api_error.
    kind = given if isinstance(given, str) and given in _STREAM_ERROR_STATUS else None
    status = _STREAM_ERROR_STATUS.get(kind or "", 500)
    typed = error_for_status(
        status, {}, provider=target.provider, model=target.model, code=kind, detail=None
    )
    # Classified as the same error over HTTP would be; the status stays None (the stream was 200).
    return type(typed)(
        f"upstream sent an error event mid-stream ({kind or 'unknown'})",
        provider=target.provider,
        model=target.model,
        status=None,
        retryable=typed.retryable,
    )
