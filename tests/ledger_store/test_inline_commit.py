"""SQLite appends that arrive one at a time commit on the event loop's thread (`write_now`);
a held database lock or appends arriving during a flight send batches to the writer thread."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from ledger import Ledger, LedgerError, NewEvent
from ledger._committer import INLINE_SLOW_S, GroupCommitter, Request, prepare
from tests.ledger_store._backends import Backend, decision


@pytest.fixture
def backend(tmp_path: Path) -> Backend:
    return Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", None, tmp_path)


def _never_slow(led: Ledger) -> None:
    """A busy machine can make a commit take longer than `INLINE_SLOW_S`; the tests that count
    inline commits on a real database must not depend on the disk's speed."""
    led.committer.inline_slow_s = math.inf


async def test_appends_one_at_a_time_commit_on_the_loop_thread(backend: Backend) -> None:
    async with backend.open() as led:
        _never_slow(led)
        positions = [e.position for i in range(20) for e in await led.append(decision(i))]
        assert positions == list(range(20))
        assert led.committer.batches == 20
        assert led.committer.inline_batches == 20
        await led.sequence()
        assert (await led.verify()).ok


async def test_appends_arriving_during_a_flight_go_to_the_writer_thread(
    backend: Backend,
) -> None:
    async def producer(n: int) -> list[int]:
        return [e.position for i in range(3) for e in await led.append(decision(3 * n + i))]

    async with backend.open() as led:
        done = await asyncio.gather(*(producer(n) for n in range(32)))
        assert sorted(p for positions in done for p in positions) == list(range(96))
        assert led.committer.inline_batches == 0
        assert led.committer.batches == 3


async def test_a_held_write_lock_never_blocks_the_event_loop(backend: Backend) -> None:
    async with backend.open() as led:
        _never_slow(led)
        await led.append(decision(0))  # inline, and opens the inline connection
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
        assert led.committer.inline_batches == 1  # the second batch went to the writer thread
        assert led.committer.batches == 2


async def test_a_failing_inline_commit_fails_its_append_and_rolls_back(backend: Backend) -> None:
    async with backend.open() as led:
        _never_slow(led)
        await backend.sql(
            "CREATE TRIGGER poison BEFORE INSERT ON ledger_events WHEN NEW.type = 'Poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned event'); END"
        )
        with pytest.raises(LedgerError, match="poisoned event"):
            await led.append(NewEvent("Poison", "p", {}))
        assert led.committer.inline_batches == 0
        assert await led.count() == 0
        (env,) = await led.append(decision(1))
        assert env.position == 0
        assert led.committer.inline_batches == 1


async def test_a_slow_inline_commit_sends_the_next_batch_to_the_writer() -> None:
    """The committer alone, with recording writers at its seam: a slow inline commit (a slow
    disk, a WAL checkpoint) hid the appends that arrived meanwhile, so the next batch goes to
    the writer thread; a quick one keeps the inline path."""
    trail: list[str] = []
    slow = True

    def write_now(batch: Sequence[Request]) -> bool:
        trail.append("inline")
        if slow:
            time.sleep(0.1)
        return True

    async def write(batch: Sequence[Request]) -> None:
        trail.append("thread")

    committer = GroupCommitter(write, write_now=write_now)
    assert committer.inline_slow_s == INLINE_SLOW_S
    committer.inline_slow_s = 0.05  # far from both the fast calls and the slow one
    await committer.submit([prepare(decision(0))], None)
    await committer.submit([prepare(decision(1))], None)
    slow = False
    for i in range(2, 4):
        await committer.submit([prepare(decision(i))], None)
    assert trail == ["inline", "thread", "inline", "inline"]
    assert (committer.batches, committer.inline_batches) == (4, 3)


async def test_leftovers_of_a_batch_limit_never_delay_waking_the_batch_before() -> None:
    """Appends the batch limit left queued start from the committed batch's callback, before
    its appenders are woken: they go to the writer, not inline (which would block the wake)."""
    trail: list[str] = []

    def write_now(batch: Sequence[Request]) -> bool:
        trail.append(f"inline {len(batch)}")
        return True

    async def write(batch: Sequence[Request]) -> None:
        trail.append(f"thread {len(batch)}")

    committer = GroupCommitter(write, write_now=write_now, max_events=3)
    await asyncio.gather(*(committer.submit([prepare(decision(i))], None) for i in range(5)))
    assert trail == ["thread 3", "thread 2"]
    assert committer.inline_batches == 0
