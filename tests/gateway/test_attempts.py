"""Every attempt is a plain append, durable before the answer that depends on it goes out.

The gateway service runs here over a real SQLite ledger and an upstream behind the upstream
package's `MockTransport` (no network); what it recorded is read back through a second, fresh
ledger handle.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ledger import NewEvent, StreamVersionConflictError
from router.core import Catalog
from router.services.decisions import (
    ATTEMPT_FINISHED,
    Decision,
    DecisionService,
    attempt_stream,
)
from router.services.gateway import Gateway, Metrics, Principal
from router.services.upstream import MockTransport, ProviderRegistry, Request, Response, Upstream
from unhardcoded.db import migrated_ledger

CATALOG = {
    "name": "attempts",
    "entries": [
        {
            "id": "fakeoai/m@eu",
            "model": "m",
            "provider": "fakeoai",
            "region": "eu",
            "price_in": 0.1,
            "price_out": 0.4,
            "status": "active",
        }
    ],
}
POLICY = {"v": "sigma-pol/v1", "rules": [{"id": "eu", "when": ["eq", "region", "eu"]}]}
BODY: dict[str, Any] = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = {
    "id": "c",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
CHUNK = {
    "id": "c",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "m",
    "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}],
}
PRINCIPAL = Principal("acme", frozenset({"route"}), "k1")


def _answer(request: Request) -> Response:
    if request.json().get("stream"):
        events = f"data: {json.dumps(CHUNK)}\n\ndata: [DONE]\n\n".encode()
        return Response(200, content=events, headers={"content-type": "text/event-stream"})
    return Response(200, json=ANSWER)


@asynccontextmanager
async def _gateway(tmp_path: Path, metrics: Metrics | None = None) -> AsyncIterator[Gateway]:
    """A gateway over a SQLite ledger whose upstream answers every call (no network)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    registry = ProviderRegistry.from_env(
        {
            "UNHARDCODED_PROVIDER_FAKEOAI_BASE_URL": "http://fake.test/v1",
            "UNHARDCODED_PROVIDER_FAKEOAI_REGION": "eu",
            "UNHARDCODED_PROVIDER_FAKEOAI_API_KEY": "sk-test",
        }
    )
    async with (
        migrated_ledger(url, home=tmp_path) as ledger,
        MockTransport(_answer) as client,
    ):
        yield Gateway(
            DecisionService(ledger),
            Upstream(client, registry),
            metrics or Metrics(),
            catalog=Catalog.from_json(CATALOG),
        )


async def _reread(tmp_path: Path, decision: Decision) -> Decision:
    """The decision as another process reads it: a fresh ledger handle on the same file."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    async with migrated_ledger(url, home=tmp_path) as ledger:
        return await DecisionService(ledger).decision(decision.decision_id)


async def _decide(gateway: Gateway, body: dict[str, Any] = BODY) -> Decision:
    return await gateway.decide(PRINCIPAL, await gateway.parse(POLICY, body))


async def test_the_answers_attempt_is_durable_when_the_answer_is_returned(
    tmp_path: Path,
) -> None:
    async with _gateway(tmp_path) as gateway:
        decision = await _decide(gateway)
        completed = await gateway.complete(decision, BODY, {})
        assert json.loads(completed.response.content)["choices"][0]["message"]["content"] == "ok"
        (attempt,) = (await _reread(tmp_path, decision)).attempts
    assert completed.attempts == (attempt,)
    assert (attempt.number, attempt.entry, attempt.status) == (1, "fakeoai/m@eu", "ok")
    assert (attempt.tokens_in, attempt.tokens_out) == (3, 1)


async def test_concurrent_requests_each_record_their_attempt(tmp_path: Path) -> None:
    async with _gateway(tmp_path) as gateway:

        async def one() -> Decision:
            decision = await _decide(gateway)
            await gateway.complete(decision, BODY, {})
            return decision

        decisions = await asyncio.gather(*(one() for _ in range(32)))
        for decision in decisions:
            assert len((await _reread(tmp_path, decision)).attempts) == 1


async def test_an_answer_whose_attempt_cannot_be_recorded_is_not_returned(
    tmp_path: Path,
) -> None:
    async with _gateway(tmp_path) as gateway:
        decision = await _decide(gateway)
        # Attempt 1 of this decision is taken already: recording the answer's attempt fails.
        stream = attempt_stream(decision.decision_id)
        await gateway.decisions.ledger.append(NewEvent(ATTEMPT_FINISHED, stream, {}))
        with pytest.raises(StreamVersionConflictError):
            await gateway.complete(decision, BODY, {})


async def test_a_streamed_attempt_is_recorded_when_its_stream_ends(tmp_path: Path) -> None:
    async with _gateway(tmp_path) as gateway:
        body = {**BODY, "stream": True}
        decision = await _decide(gateway, body)
        opened = await gateway.open_stream(decision, body, {})
        relayed = b"".join([event async for event in opened.events()])
        assert b'"content": "ok"' in relayed or b'"content":"ok"' in relayed
        (attempt,) = (await _reread(tmp_path, decision)).attempts
    assert (attempt.number, attempt.status) == (1, "ok")


async def test_a_streamed_attempt_that_cannot_be_recorded_is_counted(tmp_path: Path) -> None:
    metrics = Metrics()
    async with _gateway(tmp_path, metrics) as gateway:
        body = {**BODY, "stream": True}
        decision = await _decide(gateway, body)
        opened = await gateway.open_stream(decision, body, {})
        stream = attempt_stream(decision.decision_id)
        await gateway.decisions.ledger.append(NewEvent(ATTEMPT_FINISHED, stream, {}))
        # The caller has every byte; only the record failed, and that is counted and logged.
        assert [event async for event in opened.events()]
    assert "unhardcoded_attempt_record_failures_total 1.0" in metrics.exposition().decode()
