"""`LeanWire` (the wire under `AiohttpTransport.post`) against raw loopback servers: what it
writes, the response framings and encodings it reads, and the httpx errors it fails with."""

from __future__ import annotations

import asyncio
import gzip
import socket
import zlib
from collections.abc import Callable, Mapping
from typing import NamedTuple

import httpx
import pytest

from router.services.upstream._wire import LeanWire
from tests.support.raw_http import Answer, RawServer, response, serving

PAYLOAD = b'{"model":"m"}'


class Answered(NamedTuple):
    status_code: int
    headers: Mapping[str, str]
    content: bytes


async def post(wire: LeanWire, url: str, *, read_s: float | None = 5.0) -> Answered:
    """One call: status, headers and the decoded body."""
    answer = await wire.post(
        url + "/v1/chat?x=1",
        PAYLOAD,
        {"authorization": "Bearer k", "content-type": "application/json"},
        connect_s=5.0,
        read_s=read_s,
    )
    content = await answer.read()
    return Answered(answer.status, answer.headers, content)


def answering(*chunks: bytes, keep: bool = True) -> Answer:
    """An answer writing `chunks` (with a pause between them) to every request."""

    async def answer(server: RawServer, index: int, writer: asyncio.StreamWriter) -> bool:
        for number, chunk in enumerate(chunks):
            if number:
                await asyncio.sleep(0.01)  # separate reads on the client's side, most likely
            writer.write(chunk)
            await writer.drain()
        return keep

    return answer


async def test_the_request_on_the_wire(wire: LeanWire) -> None:
    async with serving(answering(response(b"ok"))) as server:
        answer = await wire.post(
            server.url + "/v1/chat/completions?api-version=1",
            PAYLOAD,
            {
                "Authorization": "Bearer k",
                "accept-encoding": "br",  # the wire decodes gzip and deflate only
                "Content-Length": "999",  # the wire counts the body itself
            },
            connect_s=5.0,
            read_s=5.0,
        )
        assert await answer.read() == b"ok"
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    port = server.url.rsplit(":", 1)[1]
    assert lines[0] == b"POST /v1/chat/completions?api-version=1 HTTP/1.1"
    assert sorted(lines[1:]) == sorted(
        [
            b"host: 127.0.0.1:" + port.encode(),
            b"Authorization: Bearer k",
            b"content-length: %d" % len(PAYLOAD),
            b"accept-encoding: gzip, deflate",
        ]
    )
    assert body == PAYLOAD


async def test_a_header_with_a_line_break_is_refused(wire: LeanWire) -> None:
    with pytest.raises(httpx.LocalProtocolError):
        await wire.post(
            "http://127.0.0.1:1/v1",
            b"",
            {"x-a": "1\r\nx-injected: 2"},
            connect_s=1.0,
            read_s=1.0,
        )


async def test_chunked_body_in_pieces(wire: LeanWire) -> None:
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    async with serving(answering(head + b"5\r\nhello\r\n", b"6\r\n world\r\n", b"0\r\n\r\n")) as s:
        assert (await post(wire, s.url)).content == b"hello world"
        assert (await post(wire, s.url)).content == b"hello world"
    assert s.connections == 1  # a chunked answer ends the message, not the connection


async def test_body_until_the_server_closes(wire: LeanWire) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n"
    async with serving(answering(head + b"all ", b"of it", keep=False)) as s:
        assert (await post(wire, s.url)).content == b"all of it"
        assert (await post(wire, s.url)).content == b"all of it"
    assert s.connections == 2


async def test_interim_answers_are_skipped(wire: LeanWire) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
    async with serving(answering(interim, response(b"final", status="201 Created"))) as s:
        answered = await post(wire, s.url)
    assert (answered.status_code, answered.content) == (201, b"final")
    assert "link" not in answered.headers


async def test_headers_by_any_case(wire: LeanWire) -> None:
    headers = "Retry-After: 7\r\nX-Should-Retry: false\r\nx-multi: a\r\nX-Multi: b\r\n"
    async with serving(answering(response(b"{}", status="429 Too Many", headers=headers))) as s:
        answer = await wire.post(s.url, b"", {}, connect_s=5.0, read_s=5.0)
        await answer.read()
    assert answer.status == 429
    assert answer.headers["retry-after"] == answer.headers["RETRY-AFTER"] == "7"
    assert answer.headers.get("x-should-retry") == "false"
    assert answer.headers["x-multi"] == "a, b"
    assert answer.headers.get("missing") is None


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as the RFC says
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw, as many servers send
        ("identity", lambda data: data),
    ],
)
async def test_encoded_bodies_are_decoded(
    wire: LeanWire, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    text = b'{"choices": []}' * 50
    headers = f"content-encoding: {encoding}\r\n"
    async with serving(answering(response(encode(text), headers=headers))) as s:
        assert (await post(wire, s.url)).content == text


async def test_a_body_that_does_not_decode_is_a_read_error(wire: LeanWire) -> None:
    headers = "content-encoding: gzip\r\n"
    async with serving(answering(response(b"not gzip", headers=headers))) as s:
        answer = await wire.post(s.url, b"", {}, connect_s=5.0, read_s=5.0)
        with pytest.raises(httpx.ReadError):
            await answer.read()


async def test_cut_off_mid_body_is_a_read_error(wire: LeanWire) -> None:
    cut = answering(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part", keep=False)
    async with serving(cut) as s:
        answer = await wire.post(s.url, b"", {}, connect_s=5.0, read_s=5.0)
        with pytest.raises(httpx.ReadError):
            await answer.read()


async def test_lost_or_malformed_before_the_head_is_a_protocol_error(wire: LeanWire) -> None:
    async with serving(answering(keep=False)) as s:  # closes without a byte
        with pytest.raises(httpx.RemoteProtocolError):
            await post(wire, s.url)
    async with serving(answering(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")) as s:
        with pytest.raises(httpx.RemoteProtocolError):
            await post(wire, s.url)


async def test_silence_is_a_read_timeout(wire: LeanWire) -> None:
    async def silent(server: RawServer, index: int, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(30)
        return False

    async with serving(silent) as s:
        with pytest.raises(httpx.ReadTimeout):
            await post(wire, s.url, read_s=0.2)
    stalled = answering(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", b"", b"")

    async def stall(server: RawServer, index: int, writer: asyncio.StreamWriter) -> bool:
        await stalled(server, index, writer)
        await asyncio.sleep(30)
        return False

    async with serving(stall) as s:
        answer = await wire.post(s.url, b"", {}, connect_s=5.0, read_s=0.2)
        with pytest.raises(httpx.ReadTimeout):
            await answer.read()


async def test_refused_is_a_connect_error(wire: LeanWire) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError):
        await post(wire, f"http://127.0.0.1:{port}")


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "http:///v1", "not a url", "http://[::1"])
async def test_an_unusable_url(wire: LeanWire, url: str) -> None:
    with pytest.raises(httpx.UnsupportedProtocol):
        await wire.post(url, b"", {}, connect_s=1.0, read_s=1.0)
