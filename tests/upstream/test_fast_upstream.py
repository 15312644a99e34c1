"""The benchmark upstream answers keep-alive requests, split packets included, with a completion."""

from __future__ import annotations

import socket

import httpx
from openai.types.chat import ChatCompletion

from router.services.upstream import ProviderRegistry, Upstream, Usage
from tests.support.fast_upstream import COMPLETION, FastUpstream


async def test_the_adapter_gets_the_canned_completion_over_keep_alive() -> None:
    with FastUpstream() as fast:
        registry = ProviderRegistry.from_env({"UNHARDCODED_PROVIDER_FAST_BASE_URL": fast.base_url})
        async with httpx.AsyncClient() as client:
            upstream = Upstream(client, registry)
            body = {"messages": [{"role": "user", "content": "x" * 100_000}]}  # many packets
            for _ in range(3):
                response = await upstream.complete(body, "fast", "m")
                assert response.usage == Usage(prompt_tokens=12, completion_tokens=4)
    ChatCompletion.model_validate_json(COMPLETION)


def test_a_request_split_anywhere_is_answered_once() -> None:
    request = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    with FastUpstream() as fast, socket.create_connection(("127.0.0.1", fast.port)) as sock:
        for cut in (1, 30, len(request) - 1):
            sock.sendall(request[:cut])
            sock.sendall(request[cut:])
            received = b""
            while not received.endswith(COMPLETION):
                received += sock.recv(65536)
            assert received.count(b"HTTP/1.1 200 OK") == 1
