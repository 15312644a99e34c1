"""Ledger benchmark: durable appends/s through group commit vs one commit per event, inclusion
proof latency and `verify` throughput on a large ledger. See bench/README.md.

    python bench/bench_ledger.py                       # full size (1,000,000-event ledger)
    python bench/bench_ledger.py --appends 4000 --big 50000   # quick run
    python bench/bench_ledger.py --uvloop ...             # on uvloop instead of asyncio's loop
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# verify's worker processes import the main module (multiprocessing's forkserver, as spawn does):
# this one imports the ledger, SQLAlchemy and asyncpg where it uses them, as the CLI does, so
# its workers start as the CLI's.
if TYPE_CHECKING:
    from ledger import Ledger, NewEvent

PG_URL = os.environ.get(
    "UNHARDCODED_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def decision_event(i: int, producer: int) -> NewEvent:
    """A decision-sized event (~800 bytes of canonical payload), varying per call."""
    from ledger import NewEvent

    entries = [[(i * 7 + k) % 2500, (i + k) % 97, k] for k in range(12)]
    payload = {
        "schema": "DecisionMade/v1",
        "decision_id": str(uuid.uuid4()),
        "tenant": f"tenant-{producer % 5}",
        "request_digest": os.urandom(32).hex(),
        "policy": {"fingerprint": "f" * 64, "digest": "d" * 64},
        "catalog_version": "2026-11-01.3",
        "evaluator_version": "1.4.0",
        "features": {"input_tokens": 1200 + i % 500, "region": "eu", "tools": True},
        "filter": {"failed_masks": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj" * 2},
        "rank": entries,
        "selected": entries[0][0],
        "fallback": [e[0] for e in entries[1:4]],
    }
    return NewEvent("DecisionMade", "f" * 64, payload)


async def _produce(led: Ledger, producers: int, per_producer: int) -> tuple[float, float]:
    """Seconds (wall, and CPU of this process: event loop and writer thread) for `producers`
    tasks to each append `per_producer` events, one at a time.

    The events are built before the clock starts: the figure is the ledger's (canonical JSON,
    hashing, group commit, fsync), not the cost of making up payloads.
    """
    work = [[decision_event(i, n) for i in range(per_producer)] for n in range(producers)]

    async def producer(events: list[NewEvent]) -> None:
        for event in events:
            await led.append(event)

    start, cpu = time.perf_counter(), _cpu()
    await asyncio.gather(*(producer(events) for events in work))
    return time.perf_counter() - start, _cpu() - cpu


async def _fresh_pg_schema() -> str:
    import asyncpg

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.close()
    return schema


async def _drop_pg_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
    await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await conn.close()


class Target:
    """A fresh, empty database of one backend."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        self.schema: str | None = None
        self.url = ""

    async def __aenter__(self) -> Target:
        if self.backend == "sqlite":
            self.url = f"sqlite+aiosqlite:///{self.workdir / f'{uuid.uuid4().hex}.db'}"
        else:
            self.url = PG_URL
            self.schema = await _fresh_pg_schema()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.schema:
            await _drop_pg_schema(self.schema)

    def open(self, **options: object):  # type: ignore[no-untyped-def]
        from unhardcoded.db import migrated_ledger

        return migrated_ledger(
            self.url,
            home=self.workdir / "home",
            search_path=self.schema,
            **options,  # type: ignore[arg-type]
        )


async def bench_appends(backend: str, workdir: Path, appends: int, producers: int) -> None:
    per = max(1, appends // producers)
    async with Target(backend, workdir) as target, target.open() as led:
        await _produce(led, producers, 2)  # warm up: migrations, connections
        before = led.committer.batches
        elapsed, cpu = await _produce(led, producers, per)
        grouped = producers * per / elapsed
        batches = led.committer.batches - before
    rows = _sqlite_rows(target.url) if backend == "sqlite" else []
    base_per = max(1, per // 8)
    async with Target(backend, workdir) as target, target.open(max_batch_events=1) as led:
        await _produce(led, producers, 2)
        elapsed_base, cpu_base = await _produce(led, producers, base_per)
        baseline = producers * base_per / elapsed_base
    loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
    print(
        f"{backend:8} appends ({loop}) group commit: {grouped:9,.0f}/s ({producers * per} events, "
        f"{producers} producers, {batches} transactions, CPU {cpu / (producers * per) * 1e6:.0f} "
        f"us/event)   one commit per event: {baseline:7,.0f}/s ({producers * base_per} events, "
        f"CPU {cpu_base / (producers * base_per) * 1e6:.0f} us/event)   "
        f"ratio {grouped / baseline:5.1f}x   load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    if rows:
        await _engine_floor(workdir, rows, producers, baseline)


_INSERT = "INSERT INTO ledger_events VALUES {}"
_HEAD = "SELECT position, chain_hash FROM ledger_events ORDER BY position DESC LIMIT 1"
_VERSION = "SELECT max(stream_version) FROM ledger_events WHERE stream_id = ?"


def _sqlite_rows(url: str) -> list[tuple[object, ...]]:
    """Every event row of a SQLite ledger, in position order, exactly as stored."""
    conn = sqlite3.connect(url.split("///", 1)[1])
    try:
        return conn.execute("SELECT * FROM ledger_events ORDER BY position").fetchall()
    finally:
        conn.close()


def _bare_commits(path: Path, rows: list[tuple[object, ...]], per_commit: int, sync: str) -> float:
    """Rows/s of bare sqlite3 writing `rows` into the ledger table at `path`, `per_commit` rows
    per transaction, with the writer's statements (lock, head, stream version, one multi-row
    INSERT, COMMIT) and no other work: the rows were made before the clock starts."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={sync}")
        width = len(rows[0])
        insert = _INSERT.format(",".join(["(" + ",".join("?" * width) + ")"] * per_commit))
        chunks = [
            [v for row in rows[k : k + per_commit] for v in row]
            for k in range(0, len(rows) - len(rows) % per_commit, per_commit)
        ]
        start = time.perf_counter()
        for values in chunks:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_HEAD).fetchone()
            conn.execute(_VERSION, (values[3],)).fetchone()  # the first row's stream
            conn.execute(insert, values)
            conn.execute("COMMIT")
        return len(chunks) * per_commit / (time.perf_counter() - start)
    finally:
        conn.close()


async def _engine_floor(
    workdir: Path, rows: list[tuple[object, ...]], producers: int, baseline: float
) -> None:
    """What SQLite itself allows on this machine, whatever the code above it: the group run's
    own rows written by bare sqlite3 into fresh ledger databases (made by the migrations, so
    with the same indexes and triggers), `producers` rows per commit (the largest batch that
    many producers can form, each waiting for its own append) against one row per commit, with
    the same durability; and the same batches with fsync off (not durable: an upper bound)."""

    from unhardcoded.db import migrated_ledger

    async def fresh() -> Path:
        path = workdir / f"floor-{uuid.uuid4().hex}.db"
        async with migrated_ledger(f"sqlite+aiosqlite:///{path}", home=workdir / "home"):
            pass  # the migrations
        return path

    one = _bare_commits(await fresh(), rows[: max(500, len(rows) // 8)], 1, "FULL")
    grouped = _bare_commits(await fresh(), rows, producers, "FULL")
    unsynced = _bare_commits(await fresh(), rows, producers, "OFF")
    print(
        f"sqlite   engine floor (bare sqlite3, these rows made beforehand, no ledger code): "
        f"{producers} rows per commit {grouped:9,.0f}/s   one row per commit {one:7,.0f}/s   "
        f"ratio {grouped / one:5.1f}x   fsync off {unsynced:9,.0f}/s = "
        f"{unsynced / baseline:5.1f}x the ledger's one-commit baseline above",
        flush=True,
    )


async def bench_big(
    backend: str, workdir: Path, size: int, proofs: int, verify_workers: list[int | None]
) -> None:
    options = {"max_batch_events": 20_000, "max_batch_bytes": 64 << 20}
    async with Target(backend, workdir) as target, target.open(**options) as led:
        start = time.perf_counter()
        chunk = 10_000
        ids = []
        for base in range(0, size, chunk):
            batch = [decision_event(base + i, i) for i in range(min(chunk, size - base))]
            envs = await led.append(batch)
            ids.append(envs[len(envs) // 2].event_id)
        built = time.perf_counter() - start
        start = time.perf_counter()
        head = await led.sequence(max_leaves=250_000)
        sequenced = time.perf_counter() - start
        assert head is not None
        assert head.tree_size == size
        print(
            f"{backend:8} setup: {size:,} events appended in {built:.1f}s, sequenced into the "
            f"tree in {sequenced:.1f}s",
            flush=True,
        )
        rng = random.Random(7)
        positions = [rng.randrange(size) for _ in range(proofs)]
        times = []
        for position in positions:
            t0 = time.perf_counter()
            await led.inclusion_proof(position)
            times.append((time.perf_counter() - t0) * 1000)
        by_id = []
        for event_id in ids[:proofs]:
            t0 = time.perf_counter()
            await led.inclusion_proof(event_id)
            by_id.append((time.perf_counter() - t0) * 1000)
        p95 = sorted(times)[int(len(times) * 0.95)]
        print(
            f"{backend:8} inclusion proof in a {size:,}-event ledger: median "
            f"{statistics.median(times):.2f} ms by position, {statistics.median(by_id):.2f} ms "
            f"by event id (p95 {p95:.2f} ms, {proofs} proofs)",
            flush=True,
        )
        floor = _read_and_hash_floor(target.url) if backend == "sqlite" else None
        for workers in verify_workers:
            start, cpu = time.perf_counter(), _cpu()
            report = await led.verify(chunk=50_000, workers=workers)
            elapsed, cpu = time.perf_counter() - start, _cpu() - cpu
            assert report.ok, report.problem
            rate = report.events / elapsed
            against = f", {rate / floor:.2f}x the read-and-hash floor" if floor else ""
            print(
                f"{backend:8} verify of {report.events:,} events (workers={workers or 'auto'}: "
                f"{report.segments} process{'es' if report.segments > 1 else ''}): "
                f"{elapsed:.1f}s = {rate:,.0f} events/s (CPU {cpu:.1f}s = "
                f"{cpu / report.events * 1e6:.1f} us per event in this process{against})",
                flush=True,
            )


def _read_and_hash_floor(url: str) -> float:
    """Events/s of the least any verify must do, in this process: one walk over the table
    reading every payload and hashing it once (no chain, no tree, no other column)."""
    path = url.split("///", 1)[1]
    conn = sqlite3.connect(path)
    try:
        start = time.perf_counter()
        count = 0
        for (payload,) in conn.execute("SELECT payload FROM ledger_events"):
            hashlib.sha256(payload).digest()
            count += 1
        rate = count / (time.perf_counter() - start)
    finally:
        conn.close()
    print(f"sqlite   floor: one pass reading and hashing every payload: {rate:,.0f} events/s")
    return rate


def _cpu() -> float:
    """CPU seconds of this process and of its finished child processes (verify's workers are
    the forkserver's children: not counted)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--appends", type=int, default=64_000, help="events in the group run")
    parser.add_argument("--producers", default="32", help="comma-separated producer counts")
    parser.add_argument("--big", type=int, default=1_000_000, help="events in the proof ledger")
    parser.add_argument("--big-backends", default="sqlite")
    parser.add_argument("--proofs", type=int, default=200)
    parser.add_argument(
        "--verify-workers",
        default="1,auto",
        help="verify process counts to measure (auto: one per CPU)",
    )
    parser.add_argument(
        "--uvloop", action="store_true", help="run on uvloop (as `serve` does through uvicorn)"
    )
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        workdir = Path(tmp)
        for backend in filter(None, args.backends.split(",")):
            for producers in args.producers.split(","):
                await bench_appends(backend, workdir, args.appends, int(producers))
        for backend in filter(None, args.big_backends.split(",")):
            workers = [None if w == "auto" else int(w) for w in args.verify_workers.split(",")]
            await bench_big(backend, workdir, args.big, args.proofs, workers)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(arguments))
