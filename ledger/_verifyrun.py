"""Running verify over a database: the SQL it reads, and position ranges over a process pool.

The parent reads the checkpoints (and, for several ranges, the log's bounds) in one read
transaction, opens every signed note, and cuts the log into ranges of whole blocks. Each range is
checked by `check_range`, a plain function on its own connection: in this process for one range,
in a `ProcessPoolExecutor` for several. `join_ranges` links the ranges and checks the tree above
the blocks. Ranges only say "intact or not": when anything is wrong, one range over the whole log
(the same function, in this process) names the first problem, so the report does not depend on
the number of processes.

SQLite: each range opens the file in its own read transaction; the rows of an append-only log
below its size never change, so the ranges agree with the parent's snapshot. PostgreSQL: the
parent exports its REPEATABLE READ snapshot (`pg_export_snapshot`) and every range reads in it;
a range reads one server-side cursor along the primary key and fetches the next chunk while it
checks the current one.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import sqlite3
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sqlalchemy import text

from ledger._errors import InvalidEventError
from ledger._format import GENESIS_HASH
from ledger._rotation import KEY_STREAM
from ledger._sqlite import SQLITE_BUSY_TIMEOUT_MS
from ledger._store import Source, Store, translate_errors
from ledger._verify import (
    NO_BLOCKS,
    RangeCheck,
    RangeJob,
    RangeResult,
    VerifyReport,
    block_level,
    join_ranges,
    nodes_match,
    open_checkpoints,
)

__all__ = ["PARALLEL_MIN_EVENTS", "Source", "check_range", "verify_ledger"]

PARALLEL_MIN_EVENTS = 200_000
"""Below this many events, `verify(workers=None)` checks the log in one process."""

_CHECKPOINTS = (
    "SELECT tree_size, root_hash, verifier_key, note FROM ledger_checkpoints ORDER BY tree_size"
)
_ROTATIONS = (
    f"SELECT position, payload FROM ledger_events WHERE stream_id = '{KEY_STREAM}' "
    "ORDER BY position"
)
_BOUNDS = "SELECT count(*), coalesce(max(position) + 1, 0) FROM ledger_events"
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


async def _scan(rows: _SqliteRows | _PgRows, job: RangeJob) -> RangeResult:
    prev = GENESIS_HASH if job.low == 0 else await rows.prev_hash(job.low)
    check = RangeCheck(job, prev or b"")
    while check.problem is None and (batch := await rows.next_rows()):
        spans = check.feed(batch)
        if spans:
            check.compare_nodes(spans, [await rows.nodes(*span[:3]) for span in spans])
    return check.finish(at_end=job.high is None)


async def _pg_range(source: Source, job: RangeJob, chunk: int) -> RangeResult:
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
                return await _scan(rows, job)
            finally:
                await rows.settle()
    finally:
        await pg.close()


def check_range(source: Source, job: RangeJob, chunk: int) -> RangeResult:
    """Check the positions of `job` in `source`, on a connection of its own (the task of the
    process pool, and the whole verify of one range)."""
    with translate_errors():
        if source.sqlite_path is None:
            return asyncio.run(_pg_range(source, job, chunk))
        conn = sqlite3.connect(
            source.sqlite_path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
        )
        try:
            conn.execute("PRAGMA mmap_size=1073741824")  # fewer copies on a long scan
            conn.execute("BEGIN")
            return asyncio.run(_scan(_SqliteRows(conn, job, chunk), job))
        finally:
            conn.close()


def _check_arguments(chunk: int, workers: int | None) -> None:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise InvalidEventError(f"chunk must be a positive int (events per read), got {chunk!r}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise InvalidEventError(f"workers must be a positive int or None, got {workers!r}")


def _cut(
    count: int, ranges: int, signed: Sequence[tuple[int, bytes]], sequenced: int
) -> list[RangeJob]:
    level = block_level(count, ranges)
    half = 1 << level >> 1  # cut at the block boundary nearest to an even share
    cuts = [(count * k // ranges + half) >> level << level for k in range(ranges)] + [count]
    return [
        RangeJob(low, high, level, tuple(signed), (count,) if high == count else (), sequenced)
        for low, high in itertools.pairwise(cuts)
    ]


async def _in_ranges(
    source: Source, jobs: Sequence[RangeJob], chunk: int
) -> list[RangeResult] | None:
    # forkserver: a worker starts as a fork of a small server process, not of this one (which
    # holds threads and connections). The server imports the main module and this one once
    # (it starts with the first pool of the process); each worker then starts with them loaded.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__])
    with ProcessPoolExecutor(len(jobs), mp_context=context) as pool:
        tasks = [pool.submit(check_range, source, job, chunk) for job in jobs]
        try:
            return list(await asyncio.gather(*map(asyncio.wrap_future, tasks)))
        except BrokenProcessPool:
            return None  # a worker died (e.g. killed): the range in this process decides


async def verify_ledger(
    store: Store,
    origin: str,
    *,
    chunk: int,
    trusted_keys: Iterable[str] | None,
    workers: int | None = 1,
) -> VerifyReport:
    """Verify the whole ledger in `store` (`ledger._verify` says what is checked) with `workers`
    processes (None: one per CPU from `PARALLEL_MIN_EVENTS` events on)."""
    _check_arguments(chunk, workers)
    async with store.read() as conn:
        rows = (await conn.execute(text(_CHECKPOINTS))).all()
        rotations = (await conn.execute(text(_ROTATIONS))).all()
        signed, problem = open_checkpoints(rows, origin, trusted_keys, rotations)
        if problem is not None:
            return VerifyReport(0, len(rows), 0, None, problem)
        source = await store.verify_source(conn)
        sequenced = signed[-1][0] if signed else 0
        ranges = (os.cpu_count() or 1) if workers is None else workers
        if ranges > 1:
            count, top = (await conn.execute(text(_BOUNDS))).one()
            floor = PARALLEL_MIN_EVENTS if workers is None else 2 * ranges
            # A log with a gap, or shorter than a signed tree, goes to the one range that names it.
            if count == top and count >= floor and all(size <= count for size, _ in signed):
                jobs = _cut(count, ranges, signed, sequenced)
                results = await _in_ranges(source, jobs, chunk)
                joined = None if results is None else join_ranges(results, jobs, count)
                if joined is not None:
                    root, spans = joined
                    nodes = text(_NODES.format(":level", ":first", ":last"))
                    stored = [
                        (await conn.execute(nodes, dict(zip(_SPAN, span, strict=False)))).all()
                        for span in spans
                    ]
                    if nodes_match(spans, stored):
                        return VerifyReport(count, len(rows), count, root, None, len(jobs))
        job = RangeJob(0, None, NO_BLOCKS, tuple(signed), (), sequenced)
        result = await asyncio.to_thread(check_range, source, job, chunk)
    return VerifyReport(result.end, len(rows), result.end, result.root, result.problem)
