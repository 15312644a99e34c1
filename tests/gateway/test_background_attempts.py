"""The successful attempt is recorded while the answer goes out, never lost on a clean stop.

`DecisionMade` must be durable before the upstream call (DESIGN §1); the last `AttemptFinished`
need not hold the answer back. These tests gate the recording (a `LedgerDecisions` over a real
SQLite ledger whose `record_attempt` waits for the test) to pin down when it happens.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ledger import Ledger, open_ledger
from router.core import Catalog
from router.services.gateway import Attempt, Decided, Gateway, LedgerDecisions, Metrics, Principal
from router.services.upstream import MockTransport, ProviderRegistry, Response, Upstream

CATALOG = {
    "name": "background",
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
PRINCIPAL = Principal("acme", frozenset({"route"}), "k1")


class GatedDecisions(LedgerDecisions):
    """Records for real, but each attempt only once the test opens the gate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def record_attempt(self, decided: Decided, attempt: Attempt) -> None:
        self.waiting.set()
        await self.gate.wait()
        await super().record_attempt(decided, attempt)


@asynccontextmanager
async def _ledger_and_upstream(tmp_path: Path) -> AsyncIterator[tuple[Ledger, Upstream]]:
    """A SQLite ledger, and an upstream whose every call answers `ANSWER` (no network)."""
    transport = MockTransport(lambda _: Response(200, json=ANSWER))
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    async with open_ledger(url, home=tmp_path) as ledger:
        yield ledger, _upstream(transport)


def _upstream(client: MockTransport) -> Upstream:
    registry = ProviderRegistry.from_env(
        {
            "UNHARDCODED_PROVIDER_FAKEOAI_BASE_URL": "http://fake.test/v1",
            "UNHARDCODED_PROVIDER_FAKEOAI_REGION": "eu",
            "UNHARDCODED_PROVIDER_FAKEOAI_API_KEY": "sk-test",
        }
    )
    return Upstream(client, registry)


async def test_answer_does_not_wait_for_the_attempt_and_settle_and_drain_do(
    tmp_path: Path,
) -> None:
    async with _ledger_and_upstream(tmp_path) as (ledger, upstream):
        decisions = GatedDecisions(ledger, Catalog.from_json(CATALOG))
        gateway = Gateway(decisions, upstream, Metrics())
        decided = await gateway.decide(PRINCIPAL, POLICY, BODY)
        assert decided.decision_id is not None

        # The answer is in hand while its attempt is still held at the gate.
        completed = await gateway.complete(decided, BODY, {})
        assert json.loads(completed.response.content)["choices"][0]["message"]["content"] == "ok"
        await decisions.waiting.wait()
        assert (await decisions.decision(decided.decision_id))["attempts"] == []

        settled = asyncio.create_task(gateway.settle(decided.decision_id))
        drained = asyncio.create_task(gateway.drain())
        await asyncio.sleep(0)
        assert not settled.done()
        assert not drained.done()

        decisions.gate.set()
        await asyncio.gather(settled, drained)
        (attempt,) = (await decisions.decision(decided.decision_id))["attempts"]
        assert (attempt["attempt"], attempt["entry"], attempt["status"]) == (
            1,
            "fakeoai/m@eu",
            "ok",
        )
        assert attempt["usage"] == {"in": 3, "out": 1}


async def test_a_failed_background_record_is_counted_not_swallowed(tmp_path: Path) -> None:
    async with _ledger_and_upstream(tmp_path) as (ledger, upstream):
        decisions = LedgerDecisions(ledger, Catalog.from_json(CATALOG))
        metrics = Metrics()
        gateway = Gateway(decisions, upstream, metrics)
        decided = await gateway.decide(PRINCIPAL, POLICY, BODY)
        # A decision without its ledger record: recording its attempt fails after the answer.
        foreign = Decided("00000000-0000-7000-8000-000000000000", decided.trace, record=None)
        await gateway.complete(foreign, BODY, {})
        await gateway.drain()
    exposition = metrics.exposition().decode()
    assert "unhardcoded_attempt_record_failures_total 1.0" in exposition


async def test_a_deferred_attempt_shares_the_next_decisions_commit(tmp_path: Path) -> None:
    async with _ledger_and_upstream(tmp_path) as (ledger, upstream):
        decisions = LedgerDecisions(ledger, Catalog.from_json(CATALOG))
        # A delay no test run reaches: only the next decision starts the record.
        gateway = Gateway(decisions, upstream, Metrics(), attempt_batch_delay_s=3600)
        first = await gateway.decide(PRINCIPAL, POLICY, BODY)
        await gateway.complete(first, BODY, {})
        batches = ledger.committer.batches
        second = await gateway.decide(PRINCIPAL, POLICY, BODY)
        assert first.decision_id is not None
        assert second.decision_id is not None
        await gateway.settle(first.decision_id)
        # One transaction held the second DecisionMade and the first AttemptFinished.
        assert ledger.committer.batches == batches + 1
        assert len((await decisions.decision(first.decision_id))["attempts"]) == 1
        assert (await decisions.decision(second.decision_id))["attempts"] == []


async def test_a_deferred_attempt_is_recorded_without_a_next_decision(tmp_path: Path) -> None:
    async with _ledger_and_upstream(tmp_path) as (ledger, upstream):
        decisions = GatedDecisions(ledger, Catalog.from_json(CATALOG))
        decisions.gate.set()
        gateway = Gateway(decisions, upstream, Metrics(), attempt_batch_delay_s=0)
        decided = await gateway.decide(PRINCIPAL, POLICY, BODY)
        await gateway.complete(decided, BODY, {})
        assert not decisions.waiting.is_set()  # deferred: not started within the request
        await decisions.waiting.wait()  # started by the timer: nothing else flushed it
        await gateway.drain()
        assert decided.decision_id is not None
        assert len((await decisions.decision(decided.decision_id))["attempts"]) == 1
