"""The sequencer never blocks appends: a pass reads its batch from a snapshot without a lock,
hashes and signs it off the event loop, and writes it in a short transaction that checks the
tree has not moved on. Run against a SQLite file and a PostgreSQL schema."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ledger import Envelope, InvalidEventError, Ledger, SigningKey
from ledger._keyfile import read_seed
from ledger._treestore import integrate, latest_checkpoint, read_batch
from tests.conftest import PgSchema
from tests.ledger._backends import Backend, decision


class _HeldExecutor(ThreadPoolExecutor):
    """A default executor with one worker that the test occupies until `release` is set: work
    handed to it (what `asyncio.to_thread` runs) waits there, off the event loop."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="held")
        self.release = threading.Event()
        self.handed = 0
        self.work = asyncio.Event()
        super().submit(self.release.wait)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.handed += 1  # run_in_executor calls this on the event loop's thread
        self.work.set()
        return super().submit(fn, *args, **kwargs)


async def _append(led: Ledger, first: int, count: int) -> list[Envelope]:
    return [e for i in range(first, first + count) for e in await led.append(decision(i))]


class SequencerContract:
    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError

    async def test_appends_commit_while_a_pass_is_in_its_tree_work(self, backend: Backend) -> None:
        async with backend.open() as led:
            await _append(led, 0, 10)
            held = _HeldExecutor()
            asyncio.get_running_loop().set_default_executor(held)
            try:
                running = asyncio.ensure_future(led.sequence())
                handed = asyncio.ensure_future(held.work.wait())
                await asyncio.wait((running, handed), return_when=asyncio.FIRST_COMPLETED)
                handed.cancel()
                # The pass read its batch and handed the hashing and signing to a thread ...
                assert held.handed == 1
                assert not running.done()
                # ... and holds nothing appends wait for meanwhile (on SQLite, not the file's
                # single write lock; on PostgreSQL, not the append lock).
                during = await _append(led, 10, 5)
                assert not running.done()
                assert await led.latest_checkpoint() is None
            finally:
                held.release.set()
            head = await running
            assert head is not None
            assert head.tree_size == 10  # the batch is what its snapshot held
            assert [e.position for e in during] == [10, 11, 12, 13, 14]
            head = await led.sequence()
            assert head is not None
            assert head.tree_size == 15
            report = await led.verify()
            assert report.ok, report.problem
            assert report.checkpoints == 2

    async def test_a_batch_is_not_written_over_a_tree_that_moved_on(self, backend: Backend) -> None:
        async with backend.open() as one, backend.open() as two:
            await _append(one, 0, 7)
            first = await one.sequence()
            assert first is not None
            await _append(one, 7, 4)
            async with one.store.read() as conn:
                batch = await read_batch(conn, await latest_checkpoint(conn), 100)
            assert len(batch.leaves) == 4
            assert await two.sequence() is not None  # another sequencer writes it first
            seed = read_seed(backend.home)
            assert seed is not None
            stale = integrate(batch, SigningKey.from_private_bytes(one.origin, seed), one.origin)
            writer = one.store.writer()
            try:
                assert not await writer.write_tree(stale)
            finally:
                await writer.close()
            head = await one.latest_checkpoint()
            assert head is not None
            assert head.tree_size == 11
            report = await one.verify()
            assert report.ok, report.problem
            assert report.checkpoints == 2

    @pytest.mark.parametrize("bad", [0, -3, True, 2.5])
    async def test_a_batch_size_that_is_not_a_positive_int_is_refused(
        self, backend: Backend, bad: Any
    ) -> None:
        async with backend.open() as led:
            await _append(led, 0, 2)
            with pytest.raises(InvalidEventError, match="max_leaves must be a positive int"):
                await led.sequence(max_leaves=bad)
            assert await led.latest_checkpoint() is None


class TestSQLite(SequencerContract):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", None, tmp_path)


@pytest.mark.postgres
class TestPostgres(SequencerContract):
    @pytest.fixture
    def backend(self, tmp_path: Path, pg_schema: PgSchema) -> Backend:
        return Backend("postgres", pg_schema.url, pg_schema.schema, tmp_path)
