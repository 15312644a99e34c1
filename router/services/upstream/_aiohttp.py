"""`AiohttpTransport`: the upstream HTTP/1.1 wires under the same `httpx.AsyncClient` seam.

Why: httpx's own transport (httpcore) costs about 3 ms of CPU per loopback request at 32
concurrent requests (it checks every pooled connection's socket on each request), aiohttp's
C-accelerated client about 0.2 ms. The adapters keep speaking httpx (requests, responses,
`httpx.MockTransport` in tests); only the wire changes. Requests sent through httpx (streaming
completions, anything built as an `httpx.Request`) go over aiohttp's `ClientSession`.

Non-streaming completions skip httpx altogether when the client's transport is this one
(`direct_wire`): building an `httpx.Request` and `Response` (URL parsing, header models, the
cookie jar) cost more CPU than the whole exchange. `post` goes over `LeanWire`
(`router.services.upstream._wire`), our own asyncio protocol around llhttp: aiohttp's request
machinery alone took ~0.15 ms of CPU per call, about as much as a raw socket exchange with a
loopback upstream, and half the upstream leg at concurrency 1. `post` sends the same headers the
client would and fails with the same httpx exceptions, so the adapters classify errors once.

Both wires fail with the httpx exceptions the adapters classify, with the meaning httpcore gives
them: refused/unreachable → `ConnectError`, a connect timeout → `ConnectTimeout`, no byte within
the read timeout → `ReadTimeout`, a connection lost or a malformed response →
`RemoteProtocolError` (before the response head) / `ReadError` (while reading the body), an
unusable URL → `UnsupportedProtocol`.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping

import aiohttp
import httpx

from router.services.upstream._wire import LeanWire, WireResponse

__all__ = ["AiohttpTransport", "WireResponse", "direct_wire"]


@contextlib.contextmanager
def _mapped(request: httpx.Request | None, *, reading: bool) -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError:
        raise
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(type(exc).__name__, request=request) from exc
    except (aiohttp.ServerTimeoutError, TimeoutError) as exc:
        raise httpx.ReadTimeout(type(exc).__name__, request=request) from exc
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
        raise httpx.UnsupportedProtocol(type(exc).__name__, request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(type(exc).__name__, request=request) from exc
    except aiohttp.ClientPayloadError as exc:
        raise httpx.ReadError(type(exc).__name__, request=request) from exc
    except (aiohttp.ClientError, OSError) as exc:
        error = httpx.ReadError if reading else httpx.RemoteProtocolError
        raise error(type(exc).__name__, request=request) from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request, reading=True):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An `httpx` transport over one pooled `aiohttp.ClientSession` (HTTP/1.1 keep-alive), and
    `post` over a `LeanWire` pool; each pool holds up to `max_connections`.

    Build it inside the running event loop; `aclose()` (done by the `AsyncClient`) closes both
    pools. Timeouts come from each request's httpx `timeout` extension (connect, read).
    `ssl_context` replaces the default TLS verification (system or certifi roots), e.g. to trust
    a test certificate.
    """

    def __init__(
        self,
        *,
        max_connections: int = 512,
        keepalive_expiry_s: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=0,
            keepalive_timeout=keepalive_expiry_s,
            ssl=ssl_context if ssl_context is not None else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
        )
        self._wire = LeanWire(
            max_connections=max_connections,
            keepalive_expiry_s=keepalive_expiry_s,
            ssl_context=ssl_context,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`; the response body is streamed by the returned `httpx.Response`."""
        timeout = request.extensions.get("timeout", {})
        with _mapped(request, reading=False):
            response = await self._session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=request.content or None,
                allow_redirects=False,
                compress=None,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def post(
        self,
        url: str,
        content: bytes,
        headers: Mapping[str, str],
        *,
        connect_s: float | None,
        read_s: float | None,
    ) -> WireResponse:
        """POST `content` without httpx objects (over `LeanWire`); `read()` the body, decoded
        (gzip, deflate), exactly once.

        Failures before the response head are the httpx exceptions `handle_async_request`
        raises (`ConnectError`, `ConnectTimeout`, `ReadTimeout`, `RemoteProtocolError`, …).
        """
        return await self._wire.post(url, content, headers, connect_s=connect_s, read_s=read_s)

    async def aclose(self) -> None:
        """Close both connection pools."""
        await self._wire.aclose()
        await self._session.close()


def direct_wire(client: httpx.AsyncClient) -> AiohttpTransport | None:
    """The `AiohttpTransport` every request of `client` goes through, if that is the case (no
    mounts, proxies, auth or event hooks that `AiohttpTransport.post` would bypass)."""
    # httpx has no public accessor for a client's transport; tests pin this detection.
    transport = getattr(client, "_transport", None)
    if not isinstance(transport, AiohttpTransport):
        return None
    hooks = client.event_hooks
    if getattr(client, "_mounts", None) or client.auth is not None or any(hooks.values()):
        return None
    return transport
