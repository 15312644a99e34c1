"""Group commit: one commit path for every append. A held database lock never blocks the event
loop, a failed commit fails exactly its appends, batch limits split what queued up."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from ledger import LedgerError, NewEvent
from ledger._committer import GroupCommitter, Request, prepare
from tests.ledger._backends import Backend, decision


@pytest.fixture
def backend(tmp_path: Path) -> Backend:
    return Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", None, tmp_path)


async def test_a_held_write_lock_never_blocks_the_event_loop(backend: Backend) -> None:
    async with backend.open() as led:
        await led.append(decision(0))
        other = sqlite3.connect(backend.url.split("///", 1)[1], isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's transaction, say
        try:
            appending = asyncio.create_task(led.append(decision(1)))
            ticks = 0
            for _ in range(20):
                await asyncio.sleep(0.005)
                ticks += 1
            assert ticks == 20
            assert not appending.done()
        finally:
            other.execute("ROLLBACK")
            other.close()
        (env,) = await appending
        assert env.position == 1
        assert led.committer.batches == 2


async def test_a_failing_commit_fails_its_append_and_rolls_back(backend: Backend) -> None:
    async with backend.open() as led:
        await backend.sql(
            "CREATE TRIGGER poison BEFORE INSERT ON ledger_events WHEN NEW.type = 'Poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned event'); END"
        )
        with pytest.raises(LedgerError, match="poisoned event"):
            await led.append(NewEvent("Poison", "p", {}))
        assert await led.count() == 0
        (env,) = await led.append(decision(1))
        assert env.position == 0
        assert led.committer.batches == 1


async def test_appends_issued_together_share_a_batch_within_the_limits() -> None:
    """The committer alone, with a recording writer at its seam: appends issued in one turn of
    the event loop go out together, split by `max_events`; leftovers start from the finished
    batch's callback."""
    trail: list[int] = []

    async def write(batch: Sequence[Request]) -> None:
        trail.append(len(batch))

    committer = GroupCommitter(write, max_events=3)
    await asyncio.gather(*(committer.submit([prepare(decision(i))], None) for i in range(5)))
    assert trail == [3, 2]
    assert committer.batches == 2
