"""`LeanWire`: the HTTP/1.1 client under `AiohttpTransport.post` (non-streaming upstream calls).

Why: aiohttp's `ClientSession.request` spends ~0.15 ms of CPU per call on machinery a POST with
a JSON body does not need (tracing hooks, cookie jar, URL objects, timer contexts, a stream
reader); at concurrency 1 that was half of the upstream leg. This client is an asyncio
`Protocol` feeding llhttp (`httptools.HttpResponseParser`, the parser uvicorn uses): one
`write` per request, one callback pass per received chunk, no task or stream objects.

What it does, and no more: keep-alive pools per (scheme, host, port), bounded in total; http and
https; content-length, chunked and until-EOF bodies; 1xx answers skipped; gzip/deflate decoded.
Failures are the httpx exceptions httpcore raises in the same cases (see `post`).

The pool: idle connections are reused newest first and closed after `keepalive_expiry_s`. A
connection is reused only after a complete response that allows it (no `connection: close`,
not HTTP/1.0 without keep-alive). A server that closed an idle connection is noticed before the
request is written: a pooled connection whose socket is readable (EOF, a reset, stray bytes) is
closed and the next one (or a fresh one) taken, for one `poll` syscall. The request is re-sent
on a fresh connection once only when writing it to a reused connection failed outright: a POST
the kernel accepted may have reached the server, and a completion is not idempotent (so a
connection dropped after the request went out is an error, as with httpx and aiohttp). At
`max_connections` open, a request closes an idle connection of another host, or waits for a
connection to come free, at most its read timeout, then fails with `httpx.PoolTimeout` (as
httpx's pool does).
"""

from __future__ import annotations

import asyncio
import functools
import select
import ssl
import zlib
from collections.abc import Iterator, Mapping
from typing import NamedTuple, cast

import httptools
import httpx

__all__ = ["LeanWire", "WireResponse"]

#: What `post` accepts: the encodings this module decodes.
_ACCEPT_ENCODING = b"gzip, deflate"
#: Headers the wire writes itself; a caller's copies are dropped.
_OWN_HEADERS = frozenset({"host", "content-length", "accept-encoding", "transfer-encoding"})

# Why an exchange failed; which httpx exception that is depends on whether the head had arrived.
_LOST = "connection lost"
_MALFORMED = "malformed response"
_TIMEOUT = "timed out"


class _Target(NamedTuple):
    key: tuple[str, str, int]
    head: bytes  # "POST <path> HTTP/1.1" and the host header
    tls: bool


@functools.lru_cache(maxsize=256)
def _target(url: str) -> _Target:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise httpx.UnsupportedProtocol(f"invalid URL ({exc})") from None
    scheme = parsed.scheme
    if scheme not in ("http", "https") or not parsed.host:
        raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r} or no host")
    port = parsed.port or (443 if scheme == "https" else 80)
    head = b"POST " + parsed.raw_path + b" HTTP/1.1\r\nhost: " + parsed.netloc + b"\r\n"
    return _Target((scheme, parsed.host, port), head, scheme == "https")


def _head(target: _Target, headers: Mapping[str, str], length: int) -> bytes:
    lines = []
    for name, value in headers.items():
        if name.lower() in _OWN_HEADERS:
            continue
        # A CR or LF inside a name or value would let it write headers of its own.
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise httpx.LocalProtocolError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    tail = b"content-length: %d\r\naccept-encoding: %s\r\n\r\n" % (length, _ACCEPT_ENCODING)
    return target.head + "".join(lines).encode() + tail


def _default_ssl_context() -> ssl.SSLContext:
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


class _Headers(Mapping[str, str]):
    """Response headers by lower-cased name; repeated headers joined with ", "."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"_Headers({self._items!r})"


class _ExchangeError(Exception):
    """An exchange failed; `why` is one of `_LOST`, `_MALFORMED`, `_TIMEOUT`."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _error(failure: _ExchangeError, *, in_body: bool) -> httpx.TransportError:
    if failure.why is _TIMEOUT:
        return httpx.ReadTimeout(failure.why)
    if in_body:
        return httpx.ReadError(failure.why)
    return httpx.RemoteProtocolError(failure.why)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: sends a request, parses its response as bytes arrive."""

    def __init__(self, wire: LeanWire, key: tuple[str, str, int]) -> None:
        self.wire = wire
        self.key = key
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.fd = -1
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self.busy = False
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.head_done = False
        self.complete = False
        self.sized = False  # content-length or chunked: EOF before the end is a cut-off
        self.interim = False
        self.failure: _ExchangeError | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.read_s: float | None = None
        self.last_data = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # -- exchange ---------------------------------------------------------------------------

    def send(self, data: bytes, read_s: float | None) -> bool:
        """Write one request (False: the write failed, nothing reached the server); the
        response is then awaited with `wait(head=…)`."""
        self.busy = True
        self.reusable = False
        self.head_done = self.complete = self.sized = self.interim = False
        self.status = 0
        self.headers = {}
        self.chunks = []
        self.failure = None
        self.read_s = read_s
        transport = self.transport
        assert transport is not None
        transport.write(data)
        if transport.is_closing():  # the socket send failed (a reset): nothing went out
            return False
        if read_s is not None:
            self.last_data = self.loop.time()
            self.timer = self.loop.call_at(self.last_data + read_s, self._check_timeout)
        return True

    async def wait(self, *, head: bool) -> None:
        """Until the head (`head=True`) or the whole response arrived; raises `_ExchangeError`."""
        while not (self.head_done if head else self.complete):
            if self.failure is not None:
                raise self.failure
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    def body(self) -> bytes:
        """The raw (still encoded) body of the finished response."""
        chunks = self.chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def close(self) -> None:
        """Close now; the wire forgets it."""
        self._stop_timer()
        if self.transport is not None:
            self.transport.abort()
        self.wire._forget(self)

    def usable(self, now: float) -> bool:
        """Whether this idle connection can carry the next request."""
        return (
            not self.closed
            and self.transport is not None
            and not self.transport.is_closing()
            and now - self.idle_since < self.wire.keepalive_expiry_s
        )

    def quiet(self) -> bool:
        """Whether the socket has nothing to read: an idle connection with something to read
        was closed or reset by the server (or sent bytes nobody asked for), though the event
        loop has not seen it yet."""
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        return not poller.poll(0)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check_timeout(self) -> None:
        self.timer = None
        assert self.read_s is not None
        due = self.last_data + self.read_s
        if self.loop.time() < due:
            self.timer = self.loop.call_at(due, self._check_timeout)
        else:
            self._fail(_TIMEOUT)

    def _fail(self, why: str) -> None:
        if self.failure is None and not self.complete:
            self.failure = _ExchangeError(why)
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are no subclasses
        self.fd = transport.get_extra_info("socket").fileno()

    def data_received(self, data: bytes) -> None:
        if not self.busy or self.complete:  # bytes nobody asked for: the connection is unusable
            self.reusable = False
            if self.transport is not None:
                self.transport.abort()
            return
        if self.read_s is not None:
            self.last_data = self.loop.time()
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._fail(_MALFORMED)
            if self.transport is not None:
                self.transport.abort()

    def eof_received(self) -> bool:
        self.reusable = False
        return False  # close: `connection_lost` follows

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None and self.busy and self.head_done and not self.complete and not self.sized:
            self._finished()  # a body delimited by the end of the connection
        self.reusable = False
        self._fail(_LOST)
        self.wire._forget(self)

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.headers = {}
        self.chunks = []
        self.sized = False

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        if key == "content-length" or (key == "transfer-encoding" and b"chunked" in value.lower()):
            self.sized = True
        headers = self.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.interim = True  # 100 Continue, 103 Early Hints…: the answer follows
            return
        self.status = status
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self._finished(keep_alive=self.parser.should_keep_alive())

    def _finished(self, *, keep_alive: bool = False) -> None:
        self.complete = True
        self.reusable = keep_alive
        self._stop_timer()
        self._wake()


def _decode(body: bytes, encoding: str | None) -> bytes:
    if not encoding or not body:
        return body
    for coding in reversed(encoding.lower().split(",")):
        coding = coding.strip()
        try:
            if coding in ("gzip", "x-gzip"):
                body = zlib.decompress(body, zlib.MAX_WBITS | 16)
            elif coding == "deflate":
                try:
                    body = zlib.decompress(body)
                except zlib.error:  # servers send raw deflate as often as zlib-wrapped
                    body = zlib.decompress(body, -zlib.MAX_WBITS)
        except zlib.error as exc:
            raise httpx.DecodingError(f"{coding} body does not decode ({exc})") from None
    return body


class WireResponse:
    """The head of a response from `post`; `read()` the body exactly once (that releases the
    connection: a response never read keeps its connection out of the pool)."""

    __slots__ = ("_connection", "_wire", "headers", "status")

    def __init__(self, wire: LeanWire, connection: _Connection) -> None:
        self._wire = wire
        self._connection: _Connection | None = connection
        self.status: int = connection.status
        self.headers: Mapping[str, str] = _Headers(connection.headers)

    async def read(self) -> bytes:
        """The whole (decoded) body, then the connection goes back to the pool. Failures are
        `httpx.ReadError` (cut off, malformed, undecodable) or `httpx.ReadTimeout`."""
        connection = self._connection
        if connection is None:
            raise RuntimeError("the body was read already")
        self._connection = None
        try:
            await connection.wait(head=False)
        except _ExchangeError as failure:
            connection.close()
            raise _error(failure, in_body=True) from None
        except BaseException:  # cancelled mid-body: the rest of it would poison the pool
            connection.close()
            raise
        body = connection.body()
        self._wire._release(connection)
        try:
            return _decode(body, self.headers.get("content-encoding"))
        except httpx.DecodingError as exc:
            raise httpx.ReadError(str(exc)) from None


class LeanWire:
    """Pooled HTTP/1.1 POSTs over asyncio (see the module docstring). Use it inside one event
    loop; `aclose()` closes the pooled connections."""

    def __init__(
        self,
        *,
        max_connections: int = 512,
        keepalive_expiry_s: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive_expiry_s = keepalive_expiry_s
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._open = 0  # connections open or being opened
        self._connections: set[_Connection] = set()
        self._waiters: list[asyncio.Future[None]] = []
        self._sweeper: asyncio.TimerHandle | None = None

    async def post(
        self,
        url: str,
        content: bytes,
        headers: Mapping[str, str],
        *,
        connect_s: float | None,
        read_s: float | None,
    ) -> WireResponse:
        """POST `content` with `headers` and wait for the response head.

        Failures: an unusable URL → `httpx.UnsupportedProtocol`; refused, unreachable or a
        failed TLS handshake → `httpx.ConnectError`; no connection within `connect_s` →
        `httpx.ConnectTimeout`; no response byte within `read_s` of the last →
        `httpx.ReadTimeout`; the connection lost or a malformed head →
        `httpx.RemoteProtocolError`; no free connection within `read_s` → `httpx.PoolTimeout`;
        a header name or value holding CR or LF → `httpx.LocalProtocolError` (nothing sent).
        """
        target = _target(url)
        data = _head(target, headers, len(content)) + content
        connection, reused = await self._acquire(target, connect_s, read_s)
        try:
            if not connection.send(data, read_s) and reused:
                connection.close()  # reset while idle, unseen by `quiet`: nothing went out
                connection, reused = await self._acquire(target, connect_s, read_s, fresh=True)
                connection.send(data, read_s)
            await connection.wait(head=True)
        except _ExchangeError as failure:
            connection.close()
            raise _error(failure, in_body=False) from None
        except BaseException:
            connection.close()
            raise
        return WireResponse(self, connection)

    async def aclose(self) -> None:
        """Close every connection, idle or not."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self._connections):
            connection.close()
        self._idle.clear()

    # -- the pool ----------------------------------------------------------------------------

    async def _acquire(
        self,
        target: _Target,
        connect_s: float | None,
        read_s: float | None,
        *,
        fresh: bool = False,
    ) -> tuple[_Connection, bool]:
        while True:
            connection = None if fresh else self._take_idle(target.key)
            if connection is not None:
                return connection, True
            if self._open < self.max_connections or self._evict_one():
                return await self._connect(target, connect_s), False
            await self._wait_for_slot(read_s)

    def _take_idle(self, key: tuple[str, str, int]) -> _Connection | None:
        stack = self._idle.get(key)
        if not stack:
            return None
        now = asyncio.get_running_loop().time()
        while stack:
            connection = stack.pop()
            if connection.usable(now) and connection.quiet():
                return connection
            connection.close()
        return None

    def _evict_one(self) -> bool:
        for stack in self._idle.values():
            while stack:
                stack.pop(0).close()
                if self._open < self.max_connections:
                    return True
        return False

    async def _wait_for_slot(self, timeout_s: float | None) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                await waiter
        except BaseException as exc:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self._wake_waiter()  # woken, then cancelled or timed out: pass the turn on
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout("no free connection in time") from None
            raise

    def _wake_waiter(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self, target: _Target, connect_s: float | None) -> _Connection:
        self._open += 1
        loop = asyncio.get_running_loop()
        _, host, port = target.key
        connection = _Connection(self, target.key)
        tls = None
        if target.tls:
            tls = self._ssl = self._ssl or _default_ssl_context()
        try:
            async with asyncio.timeout(connect_s):
                await loop.create_connection(
                    lambda: connection,
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                    ssl_handshake_timeout=connect_s if tls is not None else None,
                )
        except BaseException as exc:
            if connection.transport is not None:
                connection.transport.abort()
            self._forget(connection)
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout("connect timed out") from None
            if isinstance(exc, OSError):  # refused, unreachable, DNS, TLS (ssl.SSLError)
                raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from None
            raise
        self._connections.add(connection)
        return connection

    def _release(self, connection: _Connection) -> None:
        connection.busy = False
        if not connection.reusable or connection.closed:
            connection.close()
            return
        loop = asyncio.get_running_loop()
        connection.idle_since = loop.time()
        self._idle.setdefault(connection.key, []).append(connection)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self.keepalive_expiry_s, self._sweep)
        if self._waiters:
            self._wake_waiter()

    def _sweep(self) -> None:
        self._sweeper = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for stack in self._idle.values():
            for connection in [c for c in stack if not c.usable(now)]:
                stack.remove(connection)
                connection.close()
        if any(self._idle.values()):
            self._sweeper = loop.call_later(self.keepalive_expiry_s, self._sweep)

    def _forget(self, connection: _Connection) -> None:
        if connection.closed:
            return
        connection.closed = True
        self._connections.discard(connection)
        self._open -= 1
        self._wake_waiter()
