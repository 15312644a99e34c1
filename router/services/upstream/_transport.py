"""The one I/O seam of the adapters: a `Transport` sends one POST and hands back the answer.

`AiohttpTransport` is the real one: a pooled `aiohttp.ClientSession` (HTTP/1.1 keep-alive,
TLS, timeouts, gzip/deflate). `MockTransport` answers in process from a handler function, like
httpx's `MockTransport`, for tests. Both fail with `TransportError`, whose `kind` says what went
wrong in terms the adapters turn into typed `UpstreamError`s.
"""

from __future__ import annotations

import functools
import inspect
import json
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp
import yarl

__all__ = [
    "AiohttpTransport",
    "MockTransport",
    "Request",
    "Response",
    "Transport",
    "TransportError",
    "TransportErrorKind",
]

#: The `User-Agent` of upstream requests unless the transport is given another.
USER_AGENT = "unhardcoded"

#: connect: no connection (refused, unreachable, DNS); timeout: connect or read timeout;
#: broken: the connection was lost or the answer was malformed; url: the URL is not usable.
TransportErrorKind = Literal["connect", "timeout", "broken", "url"]


class TransportError(Exception):
    """A request that got no usable answer. The message is the library's exception class name,
    never a header or a body (so never a key)."""

    def __init__(self, kind: TransportErrorKind, what: str) -> None:
        super().__init__(what)
        self.kind: TransportErrorKind = kind


@dataclass(frozen=True, slots=True)
class Request:
    """One POST: `content` is the encoded body; timeouts in seconds."""

    url: str
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    connect_timeout_s: float = 5.0
    timeout_s: float = 60.0

    def json(self) -> Any:
        """The body, decoded (for test handlers)."""
        return json.loads(self.content)


class Response:
    """The head of an answer (status, case-insensitive headers) with its body read on demand:
    `read()` for all of it, or `iter_chunks()` for the pieces as they arrive; `aclose()` always."""

    def __init__(
        self,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | AsyncIterable[bytes] = b"",
        json: Any = None,
    ) -> None:
        self.status = status
        self.headers: Mapping[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        if json is not None:
            content = _dumps(json)
            self.headers = {"content-type": "application/json", **self.headers}
        self._content = content

    async def read(self) -> bytes:
        """The whole body."""
        if isinstance(self._content, bytes):
            return self._content
        return b"".join([chunk async for chunk in self._content])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body in the pieces it arrives in."""
        if isinstance(self._content, bytes):
            yield self._content
            return
        async for chunk in self._content:
            yield chunk

    async def aclose(self) -> None:
        """Release the connection (idempotent)."""


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class Transport(Protocol):
    """Sends one request; the answer's body is left unread for the caller.

    Raises `TransportError` when no answer head arrived; reading the body may raise it too.
    """

    async def send(self, request: Request) -> Response:
        """POST `request` and return the answer once its head has arrived."""
        ...

    async def aclose(self) -> None:
        """Close the connection pool."""
        ...


def _failure(exc: BaseException) -> TransportError:
    what = type(exc).__name__
    # aiohttp's timeouts are both ClientError and TimeoutError subclasses: ask about them first.
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return TransportError("timeout", what)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return TransportError("url", what)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportError("connect", what)
    return TransportError("broken", what)


class _AiohttpResponse(Response):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        super().__init__(response.status)
        self.headers = response.headers
        self._response = response

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _failure(exc) from exc

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _failure(exc) from exc

    async def aclose(self) -> None:
        # An unread body makes aiohttp close the connection instead of pooling it.
        self._response.release()


@functools.lru_cache(maxsize=256)
def _url(url: str) -> yarl.URL:
    return yarl.URL(url)  # parsed once per endpoint: the adapters send to a few URLs only


@functools.lru_cache(maxsize=64)
def _timeout(connect_s: float, read_s: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=connect_s, sock_read=read_s)


class AiohttpTransport:
    """A `Transport` over one pooled `aiohttp.ClientSession` (up to `max_connections`).

    Build it inside the running event loop and `aclose()` it (or use `async with`).
    `ssl_context` replaces the default TLS verification, e.g. to trust a test certificate.
    `user_agent` is the `User-Agent` every request sends (the product, not aiohttp's default,
    which names the Python and aiohttp versions).
    """

    def __init__(
        self,
        *,
        max_connections: int = 512,
        keepalive_expiry_s: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=0,
            keepalive_timeout=keepalive_expiry_s,
            ssl=ssl_context if ssl_context is not None else True,
        )
        # No cookie jar: a cookie one tenant's call received must never ride along on another's.
        # Our own User-Agent as a default header rather than `skip_auto_headers`: a session that
        # skips auto headers rebuilds and sorts that list into a new multidict on every request.
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": user_agent},
        )

    async def send(self, request: Request) -> Response:
        """POST `request` over the pool; see `Transport.send`."""
        try:
            url = _url(request.url)
        except ValueError as exc:
            raise TransportError("url", type(exc).__name__) from exc
        try:
            response = await self._session.post(
                url,
                data=request.content,
                headers=request.headers,
                allow_redirects=False,
                timeout=_timeout(request.connect_timeout_s, request.timeout_s),
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _failure(exc) from exc
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._session.close()

    async def __aenter__(self) -> AiohttpTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


Handler = Callable[[Request], Response | Awaitable[Response]]


class MockTransport:
    """A `Transport` that answers in process: `handler(request)` returns the `Response` (or
    raises `TransportError`); it may be a coroutine function. For tests."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def send(self, request: Request) -> Response:
        """The handler's answer to `request`."""
        answer = self._handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    async def aclose(self) -> None:
        """Nothing to close."""

    async def __aenter__(self) -> MockTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
