"""The local `echo` provider: no network, deterministic answers — NOT a real model.

It exists so a newcomer (and the demo) can see a full request, decision and trace without any
provider key. Every answer starts with `ECHO_PREFIX`, so nobody mistakes it for a model's output.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from router.services.upstream._errors import UnsupportedRequestError
from router.services.upstream._http import DONE_EVENT, Clock, dump_json, sse_event
from router.services.upstream._openai import caller_wants_usage
from router.services.upstream._types import (
    Credentials,
    RequestBody,
    UpstreamResponse,
    UpstreamStream,
    UpstreamTarget,
    Usage,
)

ECHO_PREFIX = "[echo provider: not a real model]"
_WORD = re.compile(r"\S+")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _words(text: str) -> int:
    return len(_WORD.findall(text))


class _Answer:
    """The deterministic answer to one request: words of the reply, usage, finish reason, id."""

    def __init__(self, body: RequestBody, target: UpstreamTarget) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise UnsupportedRequestError(
                "messages must be a non-empty list",
                provider=target.provider,
                model=target.model,
                pointer="/messages",
            )
        texts = [_text(m.get("content")) if isinstance(m, dict) else "" for m in messages]
        last_user = next(
            (
                text
                for m, text in zip(reversed(messages), reversed(texts), strict=True)
                if isinstance(m, dict) and m.get("role") == "user"
            ),
            "",
        )
        echoed = last_user.split() or ["(no user message)"]
        key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        limit = body.get(key)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise UnsupportedRequestError(
                f"{key} must be a non-negative integer",
                provider=target.provider,
                model=target.model,
                pointer=f"/{key}",
            )
        self.finish_reason = "stop"
        # The limit cuts the echoed words, never the prefix: every answer must say it is not
        # from a real provider.
        if limit and limit < len(echoed):
            echoed, self.finish_reason = echoed[:limit], "length"
        words = [*ECHO_PREFIX.split(), *echoed]
        self.words = words
        self.usage = Usage(
            prompt_tokens=sum(_words(t) for t in texts), completion_tokens=len(words)
        )
        digest = hashlib.sha256(
            json.dumps(messages, sort_keys=True, default=str).encode()
        ).hexdigest()
        self.id = f"chatcmpl-echo-{digest[:24]}"
        self.model = target.model


class EchoAdapter:
    """Answers every chat request with the last user message, prefixed by `ECHO_PREFIX`.

    Usage is counted in whitespace-separated words: prompt = words of every message's text,
    completion = words of the reply. `max_tokens` (or `max_completion_tokens`) cuts the reply to
    that many words with `finish_reason` `length`. `created` is always 0: the answer depends on the
    request only. Streams yield one chunk per word.
    """

    def __init__(self, *, clock: Clock = time.perf_counter) -> None:
        self._clock = clock

    async def complete(
        self, request_body: RequestBody, target: UpstreamTarget, credentials: Credentials
    ) -> UpstreamResponse:
        """The echo answer as a `chat.completion`."""
        started = self._clock()
        answer = _Answer(request_body, target)
        body = {
            "id": answer.id,
            "object": "chat.completion",
            "created": 0,
            "model": answer.model,
            "system_fingerprint": "echo-not-a-real-provider",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(answer.words)},
                    "finish_reason": answer.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": answer.usage.as_openai(),
        }
        return UpstreamResponse(
            body=body,
            content=dump_json(body),
            usage=answer.usage,
            status=200,
            latency_s=self._clock() - started,
            finish_reason=answer.finish_reason,
        )

    def stream(
        self, request_body: RequestBody, target: UpstreamTarget, credentials: Credentials
    ) -> EchoStream:
        """The echo answer as `chat.completion.chunk` events."""
        return EchoStream(request_body, target, self._clock)


class EchoStream(UpstreamStream):
    """Streams the echo answer word by word."""

    def __init__(self, body: RequestBody, target: UpstreamTarget, clock: Clock) -> None:
        super().__init__()
        self._body = body
        self._target = target
        self._clock = clock
        self._started = 0.0
        self._answer: _Answer | None = None

    async def _open(self) -> None:
        self._started = self._clock()
        self._answer = _Answer(self._body, self._target)
        self.status = 200

    def _chunk(self, answer: _Answer, delta: dict[str, Any], reason: str | None) -> dict[str, Any]:
        return {
            "id": answer.id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": answer.model,
            "system_fingerprint": "echo-not-a-real-provider",
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}],
        }

    async def _events(self) -> AsyncIterator[bytes]:
        answer = self._answer
        if answer is None:
            raise RuntimeError("iterate the stream inside `async with`")
        self.ttfb_s = self._clock() - self._started
        yield sse_event(self._chunk(answer, {"role": "assistant", "content": ""}, None))
        for i, word in enumerate(answer.words):
            yield sse_event(self._chunk(answer, {"content": word if i == 0 else f" {word}"}, None))
        yield sse_event(self._chunk(answer, {}, answer.finish_reason))
        self.finish_reason = answer.finish_reason
        self.usage = answer.usage
        if caller_wants_usage(self._body):
            final = self._chunk(answer, {}, None)
            final["choices"] = []
            final["usage"] = answer.usage.as_openai()
            yield sse_event(final)
        self.latency_s = self._clock() - self._started
        yield DONE_EVENT
