"""`LeanWire`'s connections against raw loopback servers: keep-alive reuse, servers closing
idle connections, `connection: close`, cancellation, the connection bound, TLS."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from router.services.upstream import AiohttpTransport
from router.services.upstream._wire import LeanWire, _Connection
from tests.support.raw_http import RawServer, response, self_signed, serving


async def call(wire: LeanWire, url: str, *, read_s: float = 5.0) -> bytes:
    answer = await wire.post(url + "/v1", b"{}", {}, connect_s=5.0, read_s=read_s)
    return await answer.read()


async def numbered(server: RawServer, index: int, writer: asyncio.StreamWriter) -> bool:
    """Answers `answer <index>` and keeps the connection."""
    writer.write(response(b"answer %d" % index))
    return True


async def test_sequential_calls_share_one_connection(wire: LeanWire) -> None:
    async with serving(numbered) as server:
        assert [await call(wire, server.url) for _ in range(5)] == [
            b"answer %d" % n for n in range(5)
        ]
    assert server.connections == 1


async def test_connection_close_is_not_reused(wire: LeanWire) -> None:
    async def closing(server: RawServer, index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(b"bye", headers="connection: close\r\n"))
        return True  # the server would keep it: the client must not

    async with serving(closing) as server:
        assert [await call(wire, server.url) for _ in range(3)] == [b"bye"] * 3
    assert server.connections == 3


async def test_http_1_0_without_keep_alive_is_not_reused(wire: LeanWire) -> None:
    async def old(server: RawServer, index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-length: 3\r\n\r\nold")
        return True

    async with serving(old) as server:
        assert [await call(wire, server.url) for _ in range(2)] == [b"old"] * 2
    assert server.connections == 2


async def test_an_idle_connection_the_server_closed_is_replaced(wire: LeanWire) -> None:
    async def once(server: RawServer, index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(b"answer %d" % index))  # keep-alive promised, then closed
        return False

    async with serving(once) as server:
        assert await call(wire, server.url) == b"answer 0"
        assert await call(wire, server.url) == b"answer 1"
        assert await call(wire, server.url) == b"answer 2"
    assert (server.connections, len(server.requests)) == (3, 3)  # each request sent once


async def test_a_request_dropped_on_a_reused_connection_is_not_resent(wire: LeanWire) -> None:
    async def drop_second(server: RawServer, index: int, writer: asyncio.StreamWriter) -> bool:
        if index == 1:
            return False  # read the request, then close without a byte: it may have run
        writer.write(response(b"answer %d" % index))
        return True

    async with serving(drop_second) as server:
        assert await call(wire, server.url) == b"answer 0"
        with pytest.raises(httpx.RemoteProtocolError):
            await call(wire, server.url)
        assert await call(wire, server.url) == b"answer 2"
    assert len(server.requests) == 3


async def test_a_call_cancelled_before_the_head_leaves_the_pool_clean(wire: LeanWire) -> None:
    release = asyncio.Event()

    async def slow_first(server: RawServer, index: int, writer: asyncio.StreamWriter) -> bool:
        if index == 1:
            await release.wait()  # answers late, on a connection the client dropped
        writer.write(response(b"answer %d" % index))
        return True

    async with serving(slow_first) as server:
        assert await call(wire, server.url) == b"answer 0"
        server.received.clear()
        pending = asyncio.create_task(call(wire, server.url))
        await server.received.wait()
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        release.set()
        assert await call(wire, server.url) == b"answer 2"
        assert await call(wire, server.url) == b"answer 3"
    assert server.connections == 2


async def test_a_read_cancelled_mid_body_leaves_the_pool_clean(wire: LeanWire) -> None:
    release = asyncio.Event()

    async def split_first(server: RawServer, index: int, writer: asyncio.StreamWriter) -> bool:
        if index == 0:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nansw")
            await writer.drain()
            await release.wait()
            writer.write(b"er 0")
            return True
        writer.write(response(b"answer %d" % index))
        return True

    async with serving(split_first) as server:
        answer = await wire.post(server.url, b"", {}, connect_s=5.0, read_s=5.0)
        reading = asyncio.create_task(answer.read())
        await asyncio.sleep(0.05)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        release.set()
        assert await call(wire, server.url) == b"answer 1"
    assert server.connections == 2


async def test_calls_wait_for_a_free_connection() -> None:
    wire = LeanWire(max_connections=1)
    try:
        async with serving(numbered) as server:
            first = await wire.post(server.url, b"", {}, connect_s=5.0, read_s=5.0)
            second = asyncio.create_task(call(wire, server.url))
            await asyncio.sleep(0.05)
            assert not second.done()  # the one connection is still busy
            assert await first.read() == b"answer 0"
            assert await second == b"answer 1"
            held = await wire.post(server.url, b"", {}, connect_s=5.0, read_s=5.0)
            with pytest.raises(httpx.PoolTimeout):  # held, not released in time
                await call(wire, server.url, read_s=0.1)
            assert await held.read() == b"answer 2"
        assert server.connections == 1
    finally:
        await wire.aclose()


async def test_at_the_bound_an_idle_connection_elsewhere_is_closed() -> None:
    wire = LeanWire(max_connections=1)
    try:
        async with serving(numbered) as one, serving(numbered) as other:
            assert await call(wire, one.url) == b"answer 0"
            assert await call(wire, other.url) == b"answer 0"
            assert await call(wire, one.url) == b"answer 1"
        assert (one.connections, other.connections) == (2, 1)
    finally:
        await wire.aclose()


async def test_aclose_closes_idle_connections() -> None:
    wire = LeanWire()
    async with serving(numbered) as server:
        assert await call(wire, server.url) == b"answer 0"
        await wire.aclose()
        for _ in range(100):
            if server.closed_by_client:
                break
            await asyncio.sleep(0.01)
    assert server.closed_by_client == 1


async def test_https_with_a_trusted_certificate(tmp_path: Path) -> None:
    server_tls, client_tls = self_signed(tmp_path)
    for host in ("localhost", "127.0.0.1"):  # SNI name and IP address
        async with serving(numbered, tls=server_tls, host=host) as server:
            wire = LeanWire(ssl_context=client_tls)
            try:
                assert await call(wire, server.url) == b"answer 0"
                assert await call(wire, server.url) == b"answer 1"
            finally:
                await wire.aclose()
            untrusting = LeanWire()  # the default roots do not know this certificate
            try:
                with pytest.raises(httpx.ConnectError):
                    await call(untrusting, server.url)
            finally:
                await untrusting.aclose()
        assert server.connections == 1  # kept alive; the refused handshake never got served


async def test_the_transport_posts_over_the_lean_wire(tmp_path: Path) -> None:
    server_tls, client_tls = self_signed(tmp_path)
    transport = AiohttpTransport(ssl_context=client_tls)
    try:
        async with serving(numbered, tls=server_tls) as server:
            answer = await transport.post(
                server.url + "/v1", b"{}", {"x-a": "1"}, connect_s=5.0, read_s=5.0
            )
            assert (answer.status, await answer.read()) == (200, b"answer 0")
            async with httpx.AsyncClient(transport=transport) as client:  # aiohttp, same TLS
                streamed = await client.post(server.url + "/v1", content=b"{}")
            assert streamed.content == b"answer 1"
    finally:
        await transport.aclose()


def _resetting_server(
    listener: socket.socket, reset: threading.Event, gone: threading.Event
) -> None:
    """Answers one request, resets that connection (RST) when told, then answers one more
    request on a new connection: blocking sockets, so the reset's timing is the test's."""
    first, _ = listener.accept()
    first.recv(65536)
    first.sendall(response(b"answer 0"))
    reset.wait(10)
    first.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    first.close()
    gone.set()
    second, _ = listener.accept()
    with second:
        second.recv(65536)
        second.sendall(response(b"answer 1"))


@pytest.mark.parametrize("checked", [True, False], ids=["polled", "write-failed"])
async def test_a_reset_idle_connection_is_not_used(
    monkeypatch: pytest.MonkeyPatch, checked: bool
) -> None:
    """The event loop has not seen the reset yet: `quiet()` finds it before the write, or
    (with that check off) the write fails and the request goes out on a fresh connection."""
    if not checked:
        monkeypatch.setattr(_Connection, "quiet", lambda self: True)
    writes: list[bool] = []
    send = _Connection.send

    def counted(self: _Connection, data: bytes, read_s: float | None) -> bool:
        writes.append(send(self, data, read_s))
        return writes[-1]

    monkeypatch.setattr(_Connection, "send", counted)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        reset, gone = threading.Event(), threading.Event()
        server = threading.Thread(target=_resetting_server, args=(listener, reset, gone))
        server.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        wire = LeanWire()
        try:
            assert await call(wire, url) == b"answer 0"
            reset.set()
            assert gone.wait(10)  # blocks the loop: the reset stays unseen until the next call
            assert await call(wire, url) == b"answer 1"
        finally:
            await wire.aclose()
            server.join(10)
    assert writes == ([True, True] if checked else [True, False, True])


async def test_idle_connections_expire() -> None:
    wire = LeanWire(keepalive_expiry_s=0.05)
    try:
        async with serving(numbered) as server:
            assert await call(wire, server.url) == b"answer 0"
            for _ in range(200):  # closed by the sweep, without another call
                if server.closed_by_client:
                    break
                await asyncio.sleep(0.01)
            assert server.closed_by_client == 1
            assert await call(wire, server.url) == b"answer 1"
        assert server.connections == 2
    finally:
        await wire.aclose()


async def test_a_handshake_that_never_ends_is_a_connect_timeout(wire: LeanWire) -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await reader.read()  # accepts TCP, never speaks TLS
        writer.close()

    listener = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        with pytest.raises(httpx.ConnectTimeout):
            await wire.post(f"https://127.0.0.1:{port}/v1", b"", {}, connect_s=0.2, read_s=5.0)
    finally:
        listener.close()


@contextlib.contextmanager
def _listener_that_drops_syns() -> Iterator[int]:
    """A loopback port whose TCP handshake never completes: a listener with a backlog of 0
    that never accepts, its accept queue filled first (Linux then drops further SYNs, and the
    client's connect waits for a retransmission a second later)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(8):
            filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            fillers.append(filler)
            filler.settimeout(0.3)
            try:
                filler.connect(("127.0.0.1", port))
            except TimeoutError:
                break  # the queue is full: SYNs are dropped from now on
        else:  # e.g. net.ipv4.tcp_abort_on_overflow=1: a full queue answers with a reset
            pytest.fail("the accept queue never filled: every handshake completed")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


async def test_a_tcp_handshake_that_never_ends_is_a_connect_timeout(wire: LeanWire) -> None:
    with _listener_that_drops_syns() as port:
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx.ConnectTimeout):
            await wire.post(f"http://127.0.0.1:{port}/v1", b"{}", {}, connect_s=0.2, read_s=5.0)
        # The connect bound, not the read bound, ended the call.
        assert asyncio.get_running_loop().time() - started < 2.5
