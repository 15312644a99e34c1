"""OpenAI-compatible Chat Completions (OpenAI, Mistral, Groq, Together, Fireworks, DeepInfra, …)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from router.services.upstream._errors import (
    UnsupportedRequestError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamServerError,
    error_for_status,
    redact,
    short_code,
)
from router.services.upstream._http import (
    DONE_EVENT,
    Clock,
    HttpStream,
    parse_json,
    post,
    request_for,
    timed,
)
from router.services.upstream._transport import Transport
from router.services.upstream._types import (
    Credentials,
    RequestBody,
    UpstreamResponse,
    UpstreamTarget,
    Usage,
)


def usage_from_openai(value: Any, target: UpstreamTarget) -> Usage | None:
    """`Usage` from an OpenAI `usage` object (None if absent); malformed → protocol error."""
    if value is None:
        return None
    prompt = value.get("prompt_tokens") if isinstance(value, dict) else None
    completion = value.get("completion_tokens", 0) if isinstance(value, dict) else None
    if (
        not (isinstance(prompt, int) and isinstance(completion, int))
        or prompt < 0
        or completion < 0
    ):
        raise UpstreamProtocolError(
            "response has a malformed usage object", provider=target.provider, model=target.model
        )
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _finish_reason(body: Mapping[str, Any]) -> str | None:
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        reason = choices[0].get("finish_reason")
        return reason if isinstance(reason, str) else None
    return None


def caller_wants_usage(body: RequestBody) -> bool:
    """Whether the caller itself asked for the final usage chunk of a stream."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _in_stream_error(
    chunk: Mapping[str, Any], target: UpstreamTarget, secret: str | None
) -> UpstreamError:
    error = chunk.get("error")
    code: str | None = None
    detail: str | None = None
    status: object = None
    if isinstance(error, dict):
        code = short_code(error.get("code"), secret) or short_code(error.get("type"), secret)
        message = error.get("message")
        detail = redact(message, secret) if isinstance(message, str) else None
        status = error.get("code")
    if isinstance(status, int) and 400 <= status < 600:
        return error_for_status(
            status, {}, provider=target.provider, model=target.model, code=code, detail=detail
        )
    suffix = f" ({code})" if code else ""
    return UpstreamServerError(
        f"upstream sent an error event mid-stream{suffix}",
        provider=target.provider,
        model=target.model,
        detail=detail,
    )


class OpenAICompatibleAdapter:
    """Chat Completions at `{base_url}/chat/completions` with a bearer key.

    The body goes upstream as given, with `model` rewritten to the target's model; fields the
    gateway adds (such as `policy`) must be removed by the caller. Streaming requests ask for
    `stream_options.include_usage` so usage can always be recorded.
    """

    def __init__(self, transport: Transport, *, clock: Clock = time.perf_counter) -> None:
        self._transport = transport
        self._clock = clock

    def _payload(
        self, body: RequestBody, target: UpstreamTarget, credentials: Credentials, *, stream: bool
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """(URL, JSON payload, headers) of one attempt."""
        payload = dict(body)
        payload["model"] = target.model
        if stream:
            options = payload.get("stream_options")
            if options is not None and not isinstance(options, dict):
                raise UnsupportedRequestError(
                    "stream_options must be an object",
                    provider=target.provider,
                    model=target.model,
                    pointer="/stream_options",
                )
            payload["stream"] = True
            payload["stream_options"] = {**(options or {}), "include_usage": True}
        else:
            payload.pop("stream", None)
            payload.pop("stream_options", None)
        headers = {"content-type": "application/json"}
        key = credentials.reveal()
        if key:
            headers["authorization"] = f"Bearer {key}"
        return f"{target.base_url}/chat/completions", payload, headers

    async def complete(
        self, request_body: RequestBody, target: UpstreamTarget, credentials: Credentials
    ) -> UpstreamResponse:
        """One non-streaming completion; the upstream's bytes come back unchanged as `content`."""
        url, payload, headers = self._payload(request_body, target, credentials, stream=False)
        status, content, latency = await post(
            self._transport,
            request_for(url, payload, headers, target),
            target,
            credentials,
            self._clock,
        )
        try:
            body = parse_json(content, target, "response body")
            if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
                raise UpstreamProtocolError(
                    "response is not a chat.completion object (no choices list)",
                    provider=target.provider,
                    model=target.model,
                )
            usage = usage_from_openai(body.get("usage"), target)
        except UpstreamError as error:
            raise timed(latency, error) from None
        return UpstreamResponse(
            body=body,
            content=content,
            usage=usage,
            status=status,
            latency_s=latency,
            finish_reason=_finish_reason(body),
        )

    def stream(
        self, request_body: RequestBody, target: UpstreamTarget, credentials: Credentials
    ) -> OpenAIStream:
        """A streaming completion, events passed through (the usage chunk only if asked for)."""
        url, payload, headers = self._payload(request_body, target, credentials, stream=True)
        request = request_for(url, payload, headers, target)
        return OpenAIStream(
            self._transport,
            request,
            target,
            credentials,
            self._clock,
            include_usage=caller_wants_usage(request_body),
        )


class OpenAIStream(HttpStream):
    """Passes `chat.completion.chunk` events through, noting usage and finish reason."""

    async def _events(self) -> AsyncIterator[bytes]:
        target = self._target
        async for _, data in self._sse():
            self._first_event()
            if data == "[DONE]":
                self._finished()
                yield DONE_EVENT
                return
            chunk = parse_json(data, target, "stream event")
            if not isinstance(chunk, dict):
                raise UpstreamProtocolError(
                    "stream event is not a JSON object",
                    provider=target.provider,
                    model=target.model,
                )
            if "error" in chunk and not chunk.get("choices"):
                raise _in_stream_error(chunk, target, self._credentials.reveal())
            usage = chunk.get("usage")
            if usage is not None:
                self.usage = usage_from_openai(usage, target)
            choices = chunk.get("choices")
            if not choices:
                if self._include_usage:
                    yield b"data: " + data.encode() + b"\n\n"
                continue
            reason = _finish_reason(chunk)
            if reason is not None:
                self.finish_reason = reason
            yield b"data: " + data.encode() + b"\n\n"
        raise self._cut("no [DONE] event")
