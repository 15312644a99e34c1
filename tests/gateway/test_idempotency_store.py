"""The idempotency store on its own, on a real SQLite file and on PostgreSQL: claims are atomic,
a claim left in flight is taken over only after its lease, and the window counts from the
answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from router.services.gateway import (
    Claim,
    IdempotencyInFlightError,
    IdempotencyKeyReusedError,
    IdempotencyStore,
    IdempotentAnswerNotStoredError,
    StoredAnswer,
)
from tests.conftest import PgSchema
from unhardcoded.db import create_engine, upgrade

REQUEST = {"messages": [{"role": "user", "content": "hi"}], "policy": {"v": "sigma-pol/v1"}}


class Clock:
    """A settable wall clock (seconds)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(URL, search path): a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'idem.db'}", None
    pg: PgSchema = request.getfixturevalue("pg_schema")
    return pg.url, pg.schema


@pytest.fixture
async def engine(database: tuple[str, str | None]) -> AsyncIterator[AsyncEngine]:
    """The migrated database's engine."""
    url, search_path = database
    await upgrade(url, search_path=search_path)
    made = create_engine(url, search_path=search_path)
    try:
        yield made
    finally:
        await made.dispose()


def store(engine: AsyncEngine, clock: Clock, **options: float) -> IdempotencyStore:
    settings = {"window_s": 60.0, "wait_s": 0.0, "lease_s": 30.0, **options}
    return IdempotencyStore(engine, clock=clock, **settings)


async def test_concurrent_claims_of_one_key_make_one_claim(engine: AsyncEngine) -> None:
    stores = [store(engine, Clock()) for _ in range(2)]  # two routers

    async def attempt(i: int) -> object:
        try:
            return await stores[i % 2].claim("acme", "k", REQUEST)
        except IdempotencyInFlightError as exc:
            return exc

    outcomes = await asyncio.gather(*(attempt(i) for i in range(16)))
    claims = [o for o in outcomes if isinstance(o, Claim)]
    assert len(claims) == 1
    assert all(isinstance(o, IdempotencyInFlightError) for o in outcomes if o is not claims[0])


async def test_a_claim_in_flight_is_taken_over_only_after_its_lease(engine: AsyncEngine) -> None:
    clock = Clock()
    first_router, second_router = store(engine, clock), store(engine, clock)
    first = await first_router.claim("acme", "k", REQUEST)
    assert isinstance(first, Claim)
    clock.now += 29  # still within the lease (and the window no longer matters in flight)
    with pytest.raises(IdempotencyInFlightError):
        await second_router.claim("acme", "k", REQUEST)
    clock.now += 2
    second = await second_router.claim("acme", "k", REQUEST)
    assert isinstance(second, Claim)
    assert second.claim_id != first.claim_id
    # The first router's late answer changes nothing: the key is the second claim's now.
    await first_router.finish(first, decision_id="d1", status=200, headers={}, body=b"late")
    await second_router.finish(second, decision_id="d2", status=200, headers={}, body=b"ok")
    replay = await first_router.claim("acme", "k", REQUEST)
    assert isinstance(replay, StoredAnswer)
    assert (replay.decision_id, replay.body) == ("d2", b"ok")


async def test_the_window_counts_from_the_answer(engine: AsyncEngine) -> None:
    clock = Clock()
    router = store(engine, clock, window_s=60.0, lease_s=600.0)
    claim = await router.claim("acme", "k", REQUEST)
    assert isinstance(claim, Claim)
    clock.now += 100  # a slow answer, longer than the window
    headers = {"content-type": "application/json", "x-decision-id": "d"}
    await router.finish(claim, decision_id="d", status=200, headers=headers, body=b"{}")
    clock.now += 59
    replay = await router.claim("acme", "k", REQUEST)
    assert isinstance(replay, StoredAnswer)
    assert replay.headers == headers
    with pytest.raises(IdempotencyKeyReusedError):
        await router.claim("acme", "k", {**REQUEST, "seed": 1})
    clock.now += 2
    assert isinstance(await router.claim("acme", "k", REQUEST), Claim)


async def test_an_answer_without_body_and_a_release(engine: AsyncEngine) -> None:
    router = store(engine, Clock())
    claim = await router.claim("acme", "stream", REQUEST)
    assert isinstance(claim, Claim)
    await router.finish(claim, decision_id="d", status=200, headers={}, body=None)
    with pytest.raises(IdempotentAnswerNotStoredError) as caught:
        await router.claim("acme", "stream", REQUEST)
    assert caught.value.decision_id == "d"
    released = await router.claim("acme", "failed", REQUEST)
    assert isinstance(released, Claim)
    await router.release(released)
    assert isinstance(await router.claim("acme", "failed", REQUEST), Claim)
