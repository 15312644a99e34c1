"""Non-streaming calls straight through aiohttp when the client's transport is `AiohttpTransport`
(`direct_wire`): the same request on the wire, gzip answers decoded, the same typed errors."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from router.services.upstream import (
    AiohttpTransport,
    ProviderRegistry,
    Upstream,
    UpstreamClientError,
    UpstreamProtocolError,
    direct_wire,
)

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "é"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


async def test_only_a_plain_client_over_aiohttp_goes_direct() -> None:
    transport = AiohttpTransport()
    async with httpx.AsyncClient(transport=transport) as client:
        assert direct_wire(client) is transport
    async with httpx.AsyncClient() as client:
        assert direct_wire(client) is None
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as c:
        assert direct_wire(c) is None
    hooked = AiohttpTransport()
    async with httpx.AsyncClient(
        transport=hooked, event_hooks={"request": [lambda request: None]}
    ) as client:
        assert direct_wire(client) is None  # a hook would be skipped: keep httpx in the path


class Recorder:
    """A loopback server answering gzip-encoded JSON (or `status`), recording request heads."""

    def __init__(self) -> None:
        self.heads: list[dict[str, str]] = []
        self.bodies: list[bytes] = []
        self.status = 200
        self.garbled = False

    async def handle(self, request: web.Request) -> web.Response:
        self.heads.append({k.lower(): v for k, v in request.headers.items()})
        self.bodies.append(await request.read())
        if self.status != 200:
            return web.json_response(
                {"error": {"code": "nope", "message": "no"}}, status=self.status
            )
        payload = b"not gzip" if self.garbled else gzip.compress(json.dumps(ANSWER).encode())
        return web.Response(
            body=payload,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    rec = Recorder()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield rec, f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def _upstream(client: httpx.AsyncClient, base_url: str) -> Upstream:
    return Upstream(
        client,
        ProviderRegistry.from_env(
            {
                "UNHARDCODED_PROVIDER_REC_BASE_URL": base_url,
                "UNHARDCODED_PROVIDER_REC_API_KEY": "sk-rec-1234567890",
            }
        ),
    )


async def test_both_wires_send_the_same_request_and_decode_gzip(
    recorder: tuple[Recorder, str], http: httpx.AsyncClient
) -> None:
    rec, base_url = recorder
    response = await _upstream(http, base_url).complete(BODY, "rec", "m")
    assert response.body == ANSWER
    assert json.loads(response.content) == ANSWER  # decoded bytes, as the caller gets them
    head = rec.heads[-1]
    assert head["authorization"] == "Bearer sk-rec-1234567890"
    assert head["content-type"] == "application/json"
    assert head["user-agent"] == http.headers["user-agent"]  # the client's own headers too
    assert "gzip" in head["accept-encoding"]
    assert json.loads(rec.bodies[-1]) == BODY


async def test_direct_errors_are_typed(recorder: tuple[Recorder, str]) -> None:
    rec, base_url = recorder
    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
        upstream = _upstream(client, base_url)
        rec.status = 400
        with pytest.raises(UpstreamClientError) as caught:
            await upstream.complete(BODY, "rec", "m")
        assert (caught.value.status, caught.value.retryable) == (400, False)
        assert caught.value.latency_s is not None
        rec.status, rec.garbled = 200, True
        with pytest.raises(UpstreamProtocolError):
            await upstream.complete(BODY, "rec", "m")
