"""What the HTTP adapters share: sending through the transport, typed errors, SSE framing."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from router.core import extended_canonical_bytes
from router.services.upstream._errors import (
    ProviderConfigError,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
    error_for_status,
    redact,
    short_code,
)
from router.services.upstream._transport import Request, Response, Transport, TransportError
from router.services.upstream._types import Credentials, UpstreamStream, UpstreamTarget

logger = logging.getLogger("router.services.upstream")

Clock = Callable[[], float]
DONE_EVENT = b"data: [DONE]\n\n"


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, as sent upstream and to the caller. A body that only JSON's escapes
    can carry (a lone surrogate) or with a number beyond a double (parsed from `1e999`) is
    written in its extended canonical form, which writes them as JSON text again."""
    try:
        # orjson writes the same JSON ~10x faster, but refuses lone surrogates, integers beyond
        # 64 bits and deep nesting, and writes NaN and infinities as null: any null goes the
        # slow way too, which refuses them.
        text = orjson.dumps(value)
        if b"null" not in text:
            return text
    except TypeError:
        pass
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (UnicodeEncodeError, ValueError):
        return extended_canonical_bytes(value)


def sse_event(value: Any) -> bytes:
    """One OpenAI SSE event holding `value`."""
    return b"data: " + dump_json(value) + b"\n\n"


# orjson reads an integer beyond 64 bits as a float; json keeps it exact. A run of 19+ digits
# (even inside a string) sends the text to json, as does anything orjson refuses. The run is
# looked for as 19 zeros in the text with every digit made "0" and every other byte " ": a
# substring search, ~10x faster than the regular expression `[0-9]{19}` (8 µs on a short answer).
_DIGITS_ONLY = bytes(ord("0") if chr(i).isdigit() and i < 128 else ord(" ") for i in range(256))
_LONG_NUMBER = b"0" * 19


def _loads(raw: bytes | str) -> Any:
    """`json.loads(raw)`, about twice as fast on answers orjson reads the same way."""
    data = raw.encode() if isinstance(raw, str) else raw
    if _LONG_NUMBER not in data.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw)


def parse_json(raw: bytes | str, target: UpstreamTarget, what: str) -> Any:
    """Decode JSON from the upstream; garbage or truncation is a typed `protocol` error."""
    try:
        return _loads(raw)
    except ValueError:
        raise UpstreamProtocolError(
            f"{what} is not valid JSON ({len(raw)} bytes)",
            provider=target.provider,
            model=target.model,
        ) from None


def request_for(url: str, payload: Any, headers: dict[str, str], target: UpstreamTarget) -> Request:
    """The POST of one attempt, with the target's timeouts."""
    return Request(
        url,
        dump_json(payload),
        headers,
        connect_timeout_s=target.connect_timeout_s,
        timeout_s=target.timeout_s,
    )


def _transport_error(
    exc: TransportError, target: UpstreamTarget, *, started: bool
) -> UpstreamError:
    # The exception text never holds headers (so never the key); the class name says enough.
    what = str(exc)
    provider, model = target.provider, target.model
    if exc.kind == "timeout":
        phase = "while reading the response" if started else "before a response"
        return UpstreamTimeoutError(f"timed out {phase} ({what})", provider=provider, model=model)
    if exc.kind == "url":
        return ProviderConfigError(
            f"base URL {target.base_url!r} is not a valid URL ({what})",
            provider=provider,
            model=model,
        )
    if started:
        return UpstreamProtocolError(
            f"response cut off mid-way ({what})", provider=provider, model=model
        )
    return UpstreamConnectError(
        f"connection failed before a response ({what})", provider=provider, model=model
    )


def _error_fields(raw: bytes, secret: str | None) -> tuple[str | None, str | None]:
    """(code, detail) from an OpenAI- or Anthropic-shaped error body, or raw text as detail."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace").strip()
        return None, redact(text, secret) if text else None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        code = short_code(error.get("code"), secret) or short_code(error.get("type"), secret)
        message = error.get("message")
        detail = redact(message, secret) if isinstance(message, str) else None
        return code, detail
    if isinstance(error, str):
        return None, redact(error, secret)
    return None, redact(raw.decode("utf-8", "replace"), secret)


async def send(
    transport: Transport, request: Request, target: UpstreamTarget, credentials: Credentials
) -> Response:
    """Send `request`; a transport failure or a non-2xx status becomes the typed `UpstreamError`.

    The body of a 2xx answer is left unread for the caller (who closes the response).
    """
    try:
        response = await transport.send(request)
    except TransportError as exc:
        raise _failed(_transport_error(exc, target, started=False)) from exc
    if 200 <= response.status < 300:
        logger.debug(
            "upstream %s/%s answered HTTP %d", target.provider, target.model, response.status
        )
        return response
    try:
        raw = await response.read()
    except TransportError:
        raw = b""
    finally:
        await response.aclose()
    code, detail = _error_fields(raw, credentials.reveal())
    error = error_for_status(
        response.status,
        response.headers,
        provider=target.provider,
        model=target.model,
        code=code,
        detail=detail,
    )
    raise _failed(error)


def _failed(error: UpstreamError) -> UpstreamError:
    logger.info("upstream attempt failed: %s [%s]", error, error.error_class)
    return error


async def post(
    transport: Transport,
    request: Request,
    target: UpstreamTarget,
    credentials: Credentials,
    clock: Clock,
) -> tuple[int, bytes, float]:
    """Send `request` and read the whole answer: (status, body, latency). Non-2xx statuses and
    transport failures raise the typed `UpstreamError` with its latency."""
    started = clock()
    try:
        response = await send(transport, request, target, credentials)
        try:
            content = await response.read()
        except TransportError as exc:
            raise _failed(_transport_error(exc, target, started=True)) from exc
        finally:
            await response.aclose()
    except UpstreamError as error:
        error.latency_s = clock() - started
        raise
    return response.status, content, clock() - started


def timed(latency_s: float, error: UpstreamError) -> UpstreamError:
    """`error` with the attempt's latency set."""
    error.latency_s = latency_s
    return error


_LINE_END = re.compile(rb"\r\n|\r|\n")


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """Text lines of an SSE body, split at `\\n`, `\\r\\n` or `\\r`, without their ends."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        # A `\r` at the very end may be the first half of `\r\n`: it waits for the next chunk.
        end = len(pending) - 1 if pending.endswith(b"\r") else len(pending)
        cut = max(pending.rfind(b"\n", 0, end), pending.rfind(b"\r", 0, end))
        if cut < 0:
            continue
        complete, pending = pending[: cut + 1], pending[cut + 1 :]
        for line in _LINE_END.split(complete)[:-1]:
            yield line.decode("utf-8", "replace")
    if pending:
        lines = _LINE_END.split(pending)
        if not lines[-1]:
            lines.pop()
        for line in lines:
            yield line.decode("utf-8", "replace")


class HttpStream(UpstreamStream):
    """A streaming attempt over the transport; subclasses turn SSE into OpenAI events."""

    def __init__(
        self,
        transport: Transport,
        request: Request,
        target: UpstreamTarget,
        credentials: Credentials,
        clock: Clock,
        *,
        include_usage: bool,
    ) -> None:
        super().__init__()
        self._transport = transport
        self._request = request
        self._target = target
        self._credentials = credentials
        self._clock = clock
        self._include_usage = include_usage
        self._response: Response | None = None
        self._started_at = 0.0

    async def _open(self) -> None:
        self._started_at = self._clock()
        try:
            self._response = await send(
                self._transport, self._request, self._target, self._credentials
            )
        except UpstreamError as error:
            error.latency_s = self._clock() - self._started_at
            raise
        self.status = self._response.status

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._timed()

    async def _timed(self) -> AsyncIterator[bytes]:
        try:
            async for event in self._events():
                yield event
        except UpstreamError as error:
            self._finished()
            error.latency_s = self.latency_s
            raise

    async def aclose(self) -> None:
        if self._response is not None:
            await self._response.aclose()

    def _first_event(self) -> None:
        if self.ttfb_s is None:
            self.ttfb_s = self._clock() - self._started_at

    def _finished(self) -> None:
        self.latency_s = self._clock() - self._started_at

    def _cut(self, why: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(
            f"stream ended early: {why}", provider=self._target.provider, model=self._target.model
        )

    async def _sse(self) -> AsyncIterator[tuple[str | None, str]]:
        """(event name, data) pairs per the SSE framing rules (`\\n`, `\\r\\n` or `\\r` lines)."""
        if self._response is None:
            raise RuntimeError("iterate the stream inside `async with`")
        event: str | None = None
        data: list[str] = []
        lines = _lines(self._response.iter_chunks())
        while True:
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                return  # an unterminated last event is dropped, as the SSE spec says
            except TransportError as exc:
                error = _transport_error(exc, self._target, started=True)
                logger.info("upstream stream failed: %s [%s]", error, error.error_class)
                raise error from exc
            if not line:
                if data:
                    yield event, "\n".join(data)
                event, data = None, []
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if field == "data":
                    data.append(value)
                elif field == "event":
                    event = value
