"""Must survive: SIGKILL at random moments loses nothing acknowledged; several processes append
to one PostgreSQL database with gapless, unique positions and a chain and tree that verify."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger import open_store
from ledger._tables import events
from tests.conftest import PgSchema
from tests.ledger._backends import REPO, Backend

KILLS = 10


async def _migrate(backend: Backend) -> None:
    async with backend.open():
        pass


async def _recorded(backend: Backend) -> list[tuple[int, uuid.UUID]]:
    store = open_store(backend.url, search_path=backend.search_path)
    try:
        async with store.read() as conn:
            rows = await conn.execute(
                select(events.c.position, events.c.event_id).order_by(events.c.position)
            )
            return [(p, uuid.UUID(bytes=bytes(e))) for p, e in rows.all()]
    finally:
        await store.dispose()


async def _sequence_and_verify(backend: Backend) -> None:
    async with backend.open() as led:
        assert (await led.verify()).ok
        await led.sequence()
        report = await led.verify()
        assert report.ok, report.problem


def _acknowledged(output: bytes) -> set[uuid.UUID]:
    lines = output.split(b"\n")[:-1]  # a line without its newline was never acknowledged
    return {uuid.UUID(line.decode()) for line in lines if line and line != b"ready"}


def _crash_run(backend: Backend) -> None:
    asyncio.run(_migrate(backend))
    rng = random.Random(20261125)
    acked: set[uuid.UUID] = set()
    for round_ in range(KILLS):
        proc = subprocess.Popen(
            backend.helper_argv("--producers", "8", "--tag", f"r{round_}"),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first == b"ready\n", first + (proc.stderr.read() if proc.stderr else b"")
        seen = b""
        for _ in range(rng.randint(1, 120)):  # let it run for a random number of acks
            seen += proc.stdout.readline()
        os.kill(proc.pid, signal.SIGKILL)
        # Read the rest through the same buffered reader: `communicate()` reads the pipe's file
        # descriptor directly and would lose what `readline` has already buffered.
        rest = proc.stdout.read()
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        acked |= _acknowledged(seen + rest)
    recorded = asyncio.run(_recorded(backend))
    assert [p for p, _ in recorded] == list(range(len(recorded)))
    missing = acked - {e for _, e in recorded}
    assert not missing, f"{len(missing)} acknowledged appends lost"
    asyncio.run(_sequence_and_verify(backend))


@pytest.mark.slow
def test_sigkill_loses_nothing_acknowledged_sqlite(tmp_path: Path) -> None:
    _crash_run(Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", None, tmp_path))


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_loses_nothing_acknowledged_postgres(tmp_path: Path, pg_schema: PgSchema) -> None:
    _crash_run(Backend("postgres", pg_schema.url, pg_schema.schema, tmp_path))


@pytest.mark.slow
@pytest.mark.postgres
def test_three_processes_append_to_one_postgres(tmp_path: Path, pg_schema: PgSchema) -> None:
    backend = Backend("postgres", pg_schema.url, pg_schema.schema, tmp_path)
    asyncio.run(_migrate(backend))
    procs = [
        subprocess.Popen(
            backend.helper_argv("--producers", "4", "--events", "40", "--tag", f"w{n}"),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(3)
    ]
    acked: set[uuid.UUID] = set()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        acked |= _acknowledged(out)
    assert len(acked) == 3 * 4 * 40
    recorded = asyncio.run(_recorded(backend))
    assert [p for p, _ in recorded] == list(range(3 * 4 * 40))
    assert {e for _, e in recorded} == acked
    asyncio.run(_sequence_and_verify(backend))
