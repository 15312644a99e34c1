"""Anthropic's Messages API behind the OpenAI-shaped seam (requests, responses, streams)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from router.services.upstream._anthropic_translate import (
    DEFAULT_MAX_TOKENS,
    finish_reason,
    request_to_anthropic,
    response_to_openai,
    stream_error,
    usage_from_anthropic,
)
from router.services.upstream._errors import UpstreamError, UpstreamProtocolError
from router.services.upstream._http import (
    DONE_EVENT,
    Clock,
    HttpStream,
    dump_json,
    parse_json,
    post,
    request_for,
    sse_event,
    timed,
)
from router.services.upstream._openai import caller_wants_usage
from router.services.upstream._transport import Request, Transport
from router.services.upstream._types import (
    Credentials,
    RequestBody,
    UpstreamResponse,
    UpstreamTarget,
    Usage,
)

#: The `anthropic-version` header sent with every request.
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicAdapter:
    """Messages API at `{base_url}/v1/messages` with `x-api-key` and `anthropic-version` headers.

    `default_max_tokens` fills Anthropic's required `max_tokens` when the request sets neither
    `max_completion_tokens` nor `max_tokens`. `wall_clock` stamps `created` (Anthropic sends none).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        clock: Clock = time.perf_counter,
        wall_clock: Callable[[], float] = time.time,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        version: str = ANTHROPIC_VERSION,
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._wall_clock = wall_clock
        self._default_max_tokens = default_max_tokens
        self._version = version

    def _payload(
        self, body: RequestBody, target: UpstreamTarget, credentials: Credentials, *, stream: bool
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """(URL, JSON payload, headers) of one attempt."""
        payload = request_to_anthropic(body, target, default_max_tokens=self._default_max_tokens)
        if stream:
            payload["stream"] = True
        headers = {"content-type": "application/json", "anthropic-version": self._version}
        key = credentials.reveal()
        if key:
            headers["x-api-key"] = key
        return f"{target.base_url}/v1/messages", payload, headers

    async def complete(
        self, request_body: RequestBody, target: UpstreamTarget, credentials: Credentials
    ) -> UpstreamResponse:
        """One non-streaming completion, translated both ways."""
        url, payload, headers = self._payload(request_body, target, credentials, stream=False)
        status, raw, latency = await post(
            self._transport,
            request_for(url, payload, headers, target),
            target,
            credentials,
            self._clock,
        )
        try:
            message = parse_json(raw, target, "response body")
            body = response_to_openai(message, target, created=int(self._wall_clock()))
        except UpstreamError as error:
            raise timed(latency, error) from None
        return UpstreamResponse(
            body=body,
            content=dump_json(body),
            usage=Usage(body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]),
            status=status,
            latency_s=latency,
            finish_reason=body["choices"][0]["finish_reason"],
        )

    def stream(
        self, request_body: RequestBody, target: UpstreamTarget, credentials: Credentials
    ) -> AnthropicStream:
        """A streaming completion: Anthropic SSE events become `chat.completion.chunk` events."""
        url, payload, headers = self._payload(request_body, target, credentials, stream=True)
        request = request_for(url, payload, headers, target)
        return AnthropicStream(
            self._transport,
            request,
            target,
            credentials,
            self._clock,
            include_usage=caller_wants_usage(request_body),
            created=int(self._wall_clock()),
        )


class StreamTranslator:
    """Anthropic stream events → OpenAI chunk objects (pure; one instance per stream).

    `feed(data)` takes one parsed event and returns the chunks it becomes (often none: `ping`,
    `content_block_stop`, thinking deltas). Unknown event types are ignored, as Anthropic's
    versioning policy asks of clients. `error` events raise the typed error.
    """

    def __init__(self, target: UpstreamTarget, *, created: int, include_usage: bool) -> None:
        self.target = target
        self.created = created
        self.include_usage = include_usage
        self.id: str | None = None
        self.model = target.model
        self.input_tokens: Usage | None = None
        self.output_tokens = 0
        self.finish_reason: str | None = None
        self.done = False
        self._tools: dict[int, int] = {}

    @property
    def usage(self) -> Usage | None:
        """Usage so far (None before `message_start`)."""
        if self.input_tokens is None:
            return None
        return Usage(self.input_tokens.prompt_tokens, self.output_tokens)

    def _chunk(self, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}],
        }

    def _protocol(self, why: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(why, provider=self.target.provider, model=self.target.model)

    def feed(self, data: Any) -> list[dict[str, Any]]:
        """The OpenAI chunks for one Anthropic event."""
        kind = data.get("type") if isinstance(data, dict) else None
        if not isinstance(data, dict) or kind is None:
            raise self._protocol("stream event has no type")
        if kind == "error":
            raise stream_error(data, self.target)
        if kind == "message_start":
            message = data.get("message")
            if not isinstance(message, dict):
                raise self._protocol("message_start without a message")
            self.id = message.get("id")
            self.model = message.get("model", self.model)
            self.input_tokens = usage_from_anthropic(message.get("usage"), self.target)
            self.output_tokens = self.input_tokens.completion_tokens
            return [self._chunk({"role": "assistant", "content": ""})]
        if self.input_tokens is None and kind != "ping":
            raise self._protocol(f"{kind} before message_start")
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "message_delta":
            delta = data.get("delta")
            usage = data.get("usage")
            if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
                self.output_tokens = usage["output_tokens"]
            reason = finish_reason(delta.get("stop_reason") if isinstance(delta, dict) else None)
            if reason is None:
                return []
            self.finish_reason = reason
            return [self._chunk({}, reason)]
        if kind == "message_stop":
            self.done = True
            if self.include_usage and self.usage is not None:
                final = self._chunk({})
                final["choices"] = []
                final["usage"] = self.usage.as_openai()
                return [final]
        return []

    def _block_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        block = data.get("content_block")
        index = data.get("index")
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block, dict) and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "tool_use" and isinstance(block, dict) and isinstance(index, int):
            position = self._tools[index] = len(self._tools)
            call = {
                "index": position,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _block_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        delta = data.get("delta")
        kind = delta.get("type") if isinstance(delta, dict) else None
        if kind == "text_delta" and isinstance(delta, dict):
            return [self._chunk({"content": delta.get("text", "")})]
        if kind == "input_json_delta" and isinstance(delta, dict):
            index = data.get("index")
            position = self._tools.get(index) if isinstance(index, int) else None
            if position is None:
                raise self._protocol("input_json_delta for a block that is not a tool_use")
            call = {"index": position, "function": {"arguments": delta.get("partial_json", "")}}
            return [self._chunk({"tool_calls": [call]})]
        return []


class AnthropicStream(HttpStream):
    """Translates Anthropic's SSE stream to OpenAI's, ending with `data: [DONE]`."""

    def __init__(
        self,
        transport: Transport,
        request: Request,
        target: UpstreamTarget,
        credentials: Credentials,
        clock: Clock,
        *,
        include_usage: bool,
        created: int,
    ) -> None:
        super().__init__(
            transport, request, target, credentials, clock, include_usage=include_usage
        )
        self._translator = StreamTranslator(target, created=created, include_usage=include_usage)

    async def _events(self) -> AsyncIterator[bytes]:
        translator = self._translator
        async for _, data in self._sse():
            self._first_event()
            chunks = translator.feed(parse_json(data, self._target, "stream event"))
            self.usage = translator.usage
            self.finish_reason = translator.finish_reason
            for chunk in chunks:
                yield sse_event(chunk)
            if translator.done:
                self._finished()
                yield DONE_EVENT
                return
        raise self._cut("no message_stop event")
