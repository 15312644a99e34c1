"""`verify` split across worker processes (SQLite) gives exactly the sequential report: intact
ledgers verify the same, and every tampering of the mutation sweep (and at a segment boundary)
is named at the same position with the same message."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import InvalidEventError, NewEvent, VerifyReport
from tests.ledger_store._backends import Backend, decision
from tests.ledger_store.test_tamper import CASES, SIGNED, TOTAL, Case, _flip, _row
from unhardcoded.cli import main


def _sqlite(tmp_path: Path) -> Backend:
    return Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", None, tmp_path)


async def _fill(backend: Backend) -> None:
    async with backend.open() as led:
        for i in range(SIGNED):
            attachments = {"body": b"request %d" % i} if i % 4 == 1 else {}
            await led.append(NewEvent("DecisionMade", f"fp-{i % 3}", {"i": i}, attachments))
        await led.sequence(max_leaves=8)
        for i in range(SIGNED, TOTAL):
            await led.append(decision(i, f"fp-{i % 3}"))


async def _reports(backend: Backend, workers: tuple[int, ...]) -> list[VerifyReport]:
    async with backend.open() as led:
        return [await led.verify(chunk=7, workers=w) for w in workers]


async def test_an_intact_ledger_verifies_the_same_in_segments(tmp_path: Path) -> None:
    backend = _sqlite(tmp_path)
    await _fill(backend)
    sequential, *parallel = await _reports(backend, (1, 2, 3, 4))
    assert sequential.ok
    assert (sequential.events, sequential.tree_size, sequential.checkpoints) == (TOTAL, TOTAL, 4)
    assert all(report == sequential for report in parallel)
    assert [r.segments for r in (sequential, *parallel)] == [1, 2, 3, 4]


def _boundary_case(column: str, position: int) -> Case:
    async def tamper(backend: Backend) -> None:
        value = (await _row(backend, position))[column]
        await backend.sql(
            f"UPDATE ledger_events SET {column} = :v WHERE position = {position}",
            {"v": _flip(value)},
        )

    return Case(f"{column} at {position}", tamper, (position,), "")


# With 3 workers the 36 events are checked in segments starting at 0, 12 and 24.
BOUNDARY = [_boundary_case(c, p) for c in ("prev_hash", "stream_version") for p in (12, 24)]
# Every kind of tampering of the sweep; of the one-column cases, those of three columns.
SWEEP = [c for c in CASES if not c.name.startswith("one byte of")] + [
    c for c in CASES if c.name in {f"one byte of {n}" for n in ("payload", "leaf_hash", "type")}
]


@pytest.mark.parametrize("case", [*SWEEP, *BOUNDARY], ids=lambda c: c.name)
async def test_tampering_is_named_exactly_as_sequentially(tmp_path: Path, case: Case) -> None:
    backend = _sqlite(tmp_path)
    await _fill(backend)
    await backend.drop_guards()
    await case.tamper(backend)
    sequential, *parallel = await _reports(backend, (1, 3))
    assert sequential.problem is not None, case.name
    if case.positions:
        assert sequential.problem.position in case.positions, sequential.problem
    assert all(report == sequential for report in parallel), (sequential, parallel)


async def test_workers_must_be_positive(tmp_path: Path) -> None:
    backend = _sqlite(tmp_path)
    async with backend.open() as led:
        with pytest.raises(InvalidEventError, match="workers must be a positive int"):
            await led.verify(workers=0)


def test_the_cli_verifies_with_workers(tmp_path: Path) -> None:
    backend = _sqlite(tmp_path)
    asyncio.run(_fill(backend))
    runner = CliRunner()
    env = {"UNHARDCODED_HOME": str(tmp_path)}
    args = ["ledger", "verify", "--db", backend.url, "--workers"]
    done = runner.invoke(main, [*args, "2"], env=env)
    assert done.exit_code == 0, done.output
    assert f"ledger intact: {TOTAL} events, 4 signed checkpoints" in done.stdout
    refused = runner.invoke(main, [*args, "0"], env=env)
    assert refused.exit_code == 2
    assert "--workers" in refused.output
