"""Running verify over a database: the SQL it reads, and position ranges over a process pool
(docs/ledger.md, "Verify").

Each range is checked by `check_range`, a plain function on its own connection: in this process
for one range, in a `ProcessPoolExecutor` for several. Worker processes import this module for
it, so it imports nothing of SQLAlchemy at module level (nor does `ledger`'s `__init__`): a
worker starts in a tenth of a second. Driver errors of a range reach the parent as they are,
inside the store's read transaction, which translates them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from ledger._errors import check_positive
from ledger._format import GENESIS_HASH
from ledger._rotation import KEY_STREAM
from ledger._verify import (
    NO_BLOCKS,
    RangeCheck,
    RangeJob,
    RangeResult,
    Source,
    VerifyReport,
    cut_ranges,
    join_ranges,
    nodes_match,
    open_checkpoints,
)

if TYPE_CHECKING:
    from ledger._store import Store

__all__ = ["PARALLEL_MIN_EVENTS", "check_range", "verify_ledger"]

PARALLEL_MIN_EVENTS = 200_000
"""Below this many events, `verify(workers=None)` checks the log in one process."""

RANGES_PER_PROCESS = 4
"""Ranges per worker process: a process that finishes early takes the next range (the machine
may be shared), and progress moves in steps of a quarter of a process's share."""

_CHECKPOINTS = (
    "SELECT tree_size, root_hash, verifier_key, note FROM ledger_checkpoints ORDER BY tree_size"
)
_ROTATIONS = (
    f"SELECT position, payload FROM ledger_events WHERE stream_id = '{KEY_STREAM}' "
    "ORDER BY position"
)
_TOP = "SELECT coalesce(max(position) + 1, 0) FROM ledger_events"
# Placeholders are filled per driver: `?` for sqlite3, `$n` for asyncpg.
_EVENTS = (
    "SELECT position, event_id, type, stream_id, stream_version, recorded_at_us, payload, "
    "payload_digest, attachments, prev_hash, chain_hash, leaf_hash FROM ledger_events "
    "WHERE position >= {} AND position < {} ORDER BY position"
)
_PREV_HASH = "SELECT prev_hash FROM ledger_events WHERE position = {}"
_NODES = (
    "SELECT hash, idx FROM ledger_merkle_nodes WHERE level = {} AND idx BETWEEN {} AND {} "
    "ORDER BY idx"
)
_SPAN = ("level", "first", "last")
_NO_END = 1 << 62


class _SqliteRows:
    """A range's reads on SQLite. Blocking calls behind the same async face as `_PgRows`: a
    range runs on a thread or in a process of its own, with an event loop of its own."""

    def __init__(self, conn: sqlite3.Connection, job: RangeJob, chunk: int) -> None:
        self._conn, self._chunk = conn, chunk
        sql = _EVENTS.format("?", "?")
        self._cursor = conn.execute(sql, (job.low, _NO_END if job.high is None else job.high))

    async def prev_hash(self, position: int) -> bytes | None:
        found = self._conn.execute(_PREV_HASH.format("?"), (position,)).fetchone()
        return None if found is None else bytes(found[0])

    async def next_rows(self) -> Sequence[Sequence[Any]]:
        return self._cursor.fetchmany(self._chunk)

    async def nodes(self, level: int, first: int, last: int) -> Sequence[Sequence[Any]]:
        return self._conn.execute(_NODES.format("?", "?", "?"), (level, first, last)).fetchall()


class _PgRows:
    """A range's reads on PostgreSQL: one server-side cursor, one chunk read ahead."""

    def __init__(self, pg: Any, chunk: int) -> None:
        self._pg, self._chunk = pg, chunk
        self._cursor: Any = None
        self._ahead: asyncio.Future[Any] | None = None

    async def open(self, job: RangeJob) -> None:
        high = _NO_END if job.high is None else job.high
        self._cursor = await self._pg.cursor(_EVENTS.format("$1", "$2"), job.low, high)

    async def prev_hash(self, position: int) -> bytes | None:
        found = await self._pg.fetchval(_PREV_HASH.format("$1"), position)
        return None if found is None else bytes(found)

    async def next_rows(self) -> Sequence[Sequence[Any]]:
        ahead = self._ahead or asyncio.ensure_future(self._cursor.fetch(self._chunk))
        batch: Sequence[Sequence[Any]] = await ahead
        self._ahead = None
        if batch:  # the server reads the next chunk while this one is checked
            self._ahead = asyncio.ensure_future(self._cursor.fetch(self._chunk))
            await asyncio.sleep(0)
        return batch

    async def settle(self) -> None:
        """Wait for the chunk read ahead: the connection runs one statement at a time."""
        if self._ahead is not None:
            await asyncio.wait([self._ahead])

    async def nodes(self, level: int, first: int, last: int) -> Sequence[Sequence[Any]]:
        await self.settle()
        rows: Sequence[Sequence[Any]] = await self._pg.fetch(
            _NODES.format("$1", "$2", "$3"), level, first, last
        )
        return rows


async def _scan(
    rows: _SqliteRows | _PgRows, job: RangeJob, progress: Callable[[int], None] | None
) -> RangeResult:
    prev = GENESIS_HASH if job.low == 0 else await rows.prev_hash(job.low)
    check, checked = RangeCheck(job, prev or b""), 0
    while check.problem is None and (batch := await rows.next_rows()):
        spans = check.feed(batch)
        if spans:
            check.compare_nodes(spans, [await rows.nodes(*span[:3]) for span in spans])
        checked += len(batch)
        if progress is not None:
            progress(checked)
    return check.finish(at_end=job.high is None)


async def _pg_range(
    source: Source, job: RangeJob, chunk: int, progress: Callable[[int], None] | None
) -> RangeResult:
    import asyncpg  # type: ignore[import-untyped]

    settings = {"search_path": source.search_path} if source.search_path else {}
    pg = await asyncpg.connect(source.dsn, server_settings=settings)
    try:
        async with pg.transaction(isolation="repeatable_read", readonly=True):
            if source.snapshot is not None:
                await pg.execute(f"SET TRANSACTION SNAPSHOT '{source.snapshot}'")
            rows = _PgRows(pg, chunk)
            await rows.open(job)
            try:
                return await _scan(rows, job, progress)
            finally:
                await rows.settle()
    finally:
        await pg.close()


def check_range(
    source: Source, job: RangeJob, chunk: int, progress: Callable[[int], None] | None = None
) -> RangeResult:
    """Check the positions of `job` in `source`, on a connection of its own (the task of the
    process pool, and the whole verify of one range). `progress` is called with the events
    checked so far after each chunk."""
    if source.sqlite_path is None:
        return asyncio.run(_pg_range(source, job, chunk, progress))
    conn = sqlite3.connect(
        source.sqlite_path, isolation_level=None, timeout=source.busy_timeout_ms / 1000
    )
    try:
        conn.execute("PRAGMA mmap_size=1073741824")  # fewer copies on a long scan
        conn.execute("BEGIN")
        return asyncio.run(_scan(_SqliteRows(conn, job, chunk), job, progress))
    finally:
        conn.close()


async def _in_pool(
    source: Source,
    jobs: Sequence[RangeJob],
    chunk: int,
    processes: int,
    progress: Callable[[int], None],
) -> list[RangeResult] | None:
    # forkserver: a worker starts as a fork of a small server process, not of this one (which
    # may hold threads and connections). The server imports the main module and this one once;
    # each worker then starts with them loaded.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])
    checked = 0
    with ProcessPoolExecutor(processes, mp_context=context) as pool:

        async def run(job: RangeJob) -> RangeResult:
            nonlocal checked
            result = await asyncio.wrap_future(pool.submit(check_range, source, job, chunk))
            checked += result.end - job.low
            progress(checked)
            return result

        try:
            return list(await asyncio.gather(*map(run, jobs)))
        except BrokenProcessPool:
            return None  # a worker died (e.g. killed): the range in this process decides


async def verify_ledger(
    store: Store,
    origin: str,
    *,
    chunk: int,
    trusted_keys: Iterable[str] | None,
    workers: int | None = 1,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Verify the whole ledger in `store` (`ledger._verify` says what is checked) with `workers`
    processes (None: one per CPU from `PARALLEL_MIN_EVENTS` events on)."""
    from sqlalchemy import text  # here, not above: worker processes import this module

    check_positive("chunk", chunk, " (events per read)")
    if workers is not None:
        check_positive("workers", workers, " or None")
    async with store.read() as conn:
        rows = (await conn.execute(text(_CHECKPOINTS))).all()
        rotations = (await conn.execute(text(_ROTATIONS))).all()
        signed, problem = open_checkpoints(rows, origin, trusted_keys, rotations)
        if problem is not None:
            return VerifyReport(0, len(rows), 0, None, problem)
        source = await store.verify_source(conn)
        sequenced = signed[-1][0] if signed else 0
        top = (await conn.execute(text(_TOP))).scalar_one()
        loop = asyncio.get_running_loop()

        def report(checked: int) -> None:  # on this thread, from any
            if progress is not None:
                loop.call_soon_threadsafe(progress, checked, top)

        processes = (os.cpu_count() or 1) if workers is None else workers
        floor = PARALLEL_MIN_EVENTS if workers is None else 2 * processes
        # A log shorter than a signed tree goes to the one range that names it; a gap fails the
        # range that holds it.
        if processes > 1 and top >= floor and sequenced <= top:
            jobs = cut_ranges(top, processes * RANGES_PER_PROCESS, signed, sequenced)
            results = await _in_pool(source, jobs, chunk, processes, report)
            joined = None if results is None else join_ranges(results, jobs, top, signed)
            if joined is not None:
                root, spans = joined
                nodes = text(_NODES.format(":level", ":first", ":last"))
                stored = [
                    (await conn.execute(nodes, dict(zip(_SPAN, span, strict=False)))).all()
                    for span in spans
                ]
                if nodes_match(spans, stored):
                    return VerifyReport(top, len(rows), top, root, None, processes)
        job = RangeJob(0, None, NO_BLOCKS, tuple(signed), (), sequenced)
        result = await asyncio.to_thread(check_range, source, job, chunk, report)
    return VerifyReport(result.end, len(rows), result.end, result.root, result.problem)
