"""What the HTTP adapters share: sending through the injected client, typed errors, SSE framing."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx
import orjson

from router.core import extended_canonical_bytes
from router.services.upstream._aiohttp import direct_wire
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
from router.services.upstream._types import Credentials, UpstreamStream, UpstreamTarget

logger = logging.getLogger("router.services.upstream")

Clock = Callable[[], float]
DONE_EVENT = b"data: [DONE]\n\n"


def timeout_for(target: UpstreamTarget) -> httpx.Timeout:
    """Read/write/pool timeouts from the target, with its (shorter) connect timeout."""
    return _timeout(target.timeout_s, target.connect_timeout_s)


@functools.lru_cache(maxsize=64)
def _timeout(timeout_s: float, connect_s: float) -> httpx.Timeout:
    return httpx.Timeout(timeout_s, connect=connect_s)


@functools.lru_cache(maxsize=256)
def _usable_url(url: str) -> bool:
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return True


def build_request(
    client: httpx.AsyncClient,
    url: str,
    payload: Any,
    headers: dict[str, str],
    target: UpstreamTarget,
) -> httpx.Request:
    """The POST request for one attempt; an unusable URL is a `config` error, not an httpx one."""
    try:
        return client.build_request(
            "POST", url, content=dump_json(payload), headers=headers, timeout=timeout_for(target)
        )
    except httpx.InvalidURL:
        raise ProviderConfigError(
            f"base URL {target.base_url!r} is not a valid URL",
            provider=target.provider,
            model=target.model,
        ) from None


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, as sent upstream and to the caller. A body that only JSON's escapes
    can carry (a lone surrogate) or with a number beyond a double (parsed from `1e999`) is
    written in its extended canonical form, which writes them as JSON text again."""
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
# (even inside a string) sends the text to json, as does anything orjson refuses.
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def _loads(raw: bytes | str) -> Any:
    """`json.loads(raw)`, about twice as fast on answers orjson reads the same way."""
    data = raw.encode() if isinstance(raw, str) else raw
    if _LONG_NUMBER.search(data) is None:
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


def _transport_error(
    exc: httpx.RequestError, target: UpstreamTarget, *, started: bool
) -> UpstreamError:
    # The exception text never holds headers (so never the key); the class name says enough.
    what = type(exc).__name__
    provider, model = target.provider, target.model
    if isinstance(exc, httpx.TimeoutException):
        phase = "while reading the response" if started else "before a response"
        return UpstreamTimeoutError(f"timed out {phase} ({what})", provider=provider, model=model)
    if started or not isinstance(exc, httpx.TransportError):  # e.g. a body that fails to decode
        return UpstreamProtocolError(
            f"response cut off mid-way ({what})", provider=provider, model=model
        )
    if isinstance(exc, httpx.UnsupportedProtocol):
        return UpstreamConnectError(
            f"base URL {target.base_url!r} is not usable ({what})",
            provider=provider,
            model=model,
            retryable=False,
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
    client: httpx.AsyncClient,
    request: httpx.Request,
    target: UpstreamTarget,
    credentials: Credentials,
    *,
    stream: bool,
) -> httpx.Response:
    """Send `request`; a transport failure or a non-2xx status becomes the typed `UpstreamError`.

    With `stream=True` the body of a 2xx response is left unread for the caller to iterate.
    """
    try:
        response = await client.send(request, stream=stream)
    except httpx.RequestError as exc:
        raise _failed(_transport_error(exc, target, started=False)) from exc
    if response.is_success:
        logger.debug(
            "upstream %s/%s answered HTTP %d", target.provider, target.model, response.status_code
        )
        return response
    try:
        raw = await response.aread()
    except httpx.RequestError:
        raw = b""
    finally:
        await response.aclose()
    raise _status_error(response.status_code, response.headers, raw, target, credentials)


def _failed(error: UpstreamError) -> UpstreamError:
    logger.info("upstream attempt failed: %s [%s]", error, error.error_class)
    return error


def _status_error(
    status: int,
    headers: Mapping[str, str],
    raw: bytes,
    target: UpstreamTarget,
    credentials: Credentials,
) -> UpstreamError:
    code, detail = _error_fields(raw, credentials.reveal())
    error = error_for_status(
        status, headers, provider=target.provider, model=target.model, code=code, detail=detail
    )
    return _failed(error)


class Sender:
    """Sends an adapter's non-streaming requests through the injected client — or, when that
    client's transport is the `AiohttpTransport`, straight over its `LeanWire` (same headers,
    same typed errors, no httpx objects: see `router.services.upstream._aiohttp`)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.wire = direct_wire(client)
        # The headers the client adds to each request (accept, user-agent, …), sent as well.
        self._defaults = dict(client.headers.items())

    async def post(
        self,
        url: str,
        payload: Any,
        headers: dict[str, str],
        target: UpstreamTarget,
        credentials: Credentials,
        clock: Clock,
    ) -> tuple[int, bytes, float]:
        """POST `payload` as JSON and read the whole answer: (status, body, latency). Non-2xx
        statuses and transport failures raise the typed `UpstreamError` with its latency."""
        wire = self.wire
        if wire is None:
            request = build_request(self.client, url, payload, headers, target)
            answered, body, latency = await fetch(self.client, request, target, credentials, clock)
            return answered.status_code, body, latency
        if not _usable_url(url):
            raise ProviderConfigError(
                f"base URL {target.base_url!r} is not a valid URL",
                provider=target.provider,
                model=target.model,
            )
        content = dump_json(payload)
        started = clock()
        try:
            try:
                response = await wire.post(
                    url,
                    content,
                    {**self._defaults, **headers},
                    connect_s=target.connect_timeout_s,
                    read_s=target.timeout_s,
                )
            except httpx.RequestError as exc:
                raise _failed(_transport_error(exc, target, started=False)) from exc
            try:
                raw = await response.read()
            except httpx.RequestError as exc:
                if 200 <= response.status < 300:
                    raise _failed(_transport_error(exc, target, started=True)) from exc
                raw = b""
            if not 200 <= response.status < 300:
                raise _status_error(response.status, response.headers, raw, target, credentials)
        except UpstreamError as error:
            error.latency_s = clock() - started
            raise
        logger.debug(
            "upstream %s/%s answered HTTP %d", target.provider, target.model, response.status
        )
        return response.status, raw, clock() - started


async def fetch(
    client: httpx.AsyncClient,
    request: httpx.Request,
    target: UpstreamTarget,
    credentials: Credentials,
    clock: Clock,
) -> tuple[httpx.Response, bytes, float]:
    """Send `request` and read the whole body: (response, body, latency); errors carry latency."""
    started = clock()
    try:
        response = await send(client, request, target, credentials, stream=True)
        content = await read_body(response, target)
    except UpstreamError as error:
        error.latency_s = clock() - started
        raise
    return response, content, clock() - started


def timed(latency_s: float, error: UpstreamError) -> UpstreamError:
    """`error` with the attempt's latency set."""
    error.latency_s = latency_s
    return error


async def read_body(response: httpx.Response, target: UpstreamTarget) -> bytes:
    """The whole body of a streamed or unread response, with typed errors."""
    try:
        return await response.aread()
    except httpx.RequestError as exc:
        raise _transport_error(exc, target, started=True) from exc
    finally:
        await response.aclose()


class HttpStream(UpstreamStream):
    """A streaming attempt over the injected client; subclasses turn SSE into OpenAI events."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        target: UpstreamTarget,
        credentials: Credentials,
        clock: Clock,
        *,
        include_usage: bool,
    ) -> None:
        super().__init__()
        self._client = client
        self._request = request
        self._target = target
        self._credentials = credentials
        self._clock = clock
        self._include_usage = include_usage
        self._response: httpx.Response | None = None
        self._started_at = 0.0

    async def _open(self) -> None:
        self._started_at = self._clock()
        try:
            self._response = await send(
                self._client, self._request, self._target, self._credentials, stream=True
            )
        except UpstreamError as error:
            error.latency_s = self._clock() - self._started_at
            raise
        self.status = self._response.status_code

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
        lines = self._response.aiter_lines()
        while True:
            try:
                line = await anext(lines)
            except StopAsyncIteration:
                return  # an unterminated last event is dropped, as the SSE spec says
            except httpx.RequestError as exc:
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
