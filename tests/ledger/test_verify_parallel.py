"""`verify` split into position ranges over worker processes gives exactly the one-process report,
on SQLite and PostgreSQL: intact ledgers verify the same, and every tampering of the mutation
sweep (and at a range boundary) is named at the same position with the same message."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import InvalidEventError, VerifyReport
from tests.conftest import PgSchema
from tests.ledger._backends import Backend, decision
from tests.ledger.test_tamper import CASES, TOTAL, Case, _flip, _row, fill
from unhardcoded.cli import main


def _sqlite(tmp_path: Path) -> Backend:
    return Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}", None, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return _sqlite(tmp_path)
    schema: PgSchema = request.getfixturevalue("pg_schema")
    return Backend("postgres", schema.url, schema.schema, tmp_path)


async def _fill(backend: Backend) -> None:
    async with backend.open() as led:
        await fill(led)


async def _reports(backend: Backend, workers: tuple[int | None, ...]) -> list[VerifyReport]:
    async with backend.open() as led:
        return [await led.verify(chunk=7, workers=w) for w in workers]


async def test_an_intact_ledger_verifies_the_same_in_ranges(backend: Backend) -> None:
    await _fill(backend)
    sequential, *parallel = await _reports(backend, (1, 2, 3, 4))
    assert sequential.ok
    assert (sequential.events, sequential.tree_size, sequential.checkpoints) == (TOTAL, TOTAL, 4)
    assert all(report == sequential for report in parallel)
    assert [r.segments for r in (sequential, *parallel)] == [1, 2, 3, 4]


async def test_progress_reaches_the_end_of_the_log_in_one_and_in_many_processes(
    backend: Backend,
) -> None:
    await _fill(backend)
    async with backend.open() as led:
        for workers in (1, 3):
            calls: list[tuple[int, int]] = []

            def record(done: int, total: int, calls: list[tuple[int, int]] = calls) -> None:
                calls.append((done, total))

            report = await led.verify(chunk=7, workers=workers, progress=record)
            assert report.ok
            assert calls[-1] == (TOTAL, TOTAL)
            assert [done for done, _ in calls] == sorted(done for done, _ in calls)
            assert len(calls) > 1


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
async def test_tampering_is_named_exactly_as_in_one_process(backend: Backend, case: Case) -> None:
    await _fill(backend)
    await backend.drop_guards()
    await case.tamper(backend)
    sequential, *parallel = await _reports(backend, (1, 3))
    assert sequential.problem is not None, case.name
    if case.positions:
        assert sequential.problem.position in case.positions, sequential.problem
    assert all(report == sequential for report in parallel), (sequential, parallel)


# Every node of the signed 30-event tree (levels 1-4): with 2 workers the blocks are 2 events, so
# level 1 is checked by the workers and levels 2-4 by the parent above the blocks; with 3 workers
# the blocks are single events and the parent checks every level.
NODES = [(level, i) for level in range(1, 5) for i in range(30 >> level)]


@pytest.mark.parametrize("node", NODES, ids=lambda n: f"level {n[0]} index {n[1]}")
async def test_every_tampered_merkle_node_is_named_as_in_one_process(
    backend: Backend, node: tuple[int, int]
) -> None:
    await _fill(backend)
    await backend.drop_guards()
    await backend.sql(
        "UPDATE ledger_merkle_nodes SET hash = :h WHERE level = :l AND idx = :i",
        {"h": bytes(32), "l": node[0], "i": node[1]},
    )
    sequential, *parallel = await _reports(backend, (1, 2, 3))
    assert sequential.problem is not None
    assert "Merkle node" in sequential.problem.message
    assert all(report == sequential for report in parallel), (sequential, parallel)


async def test_a_ledger_of_many_blocks_verifies_the_same_with_checkpoints_inside_blocks(
    backend: Backend,
) -> None:
    # 1,000 events signed at sizes that are not block boundaries (blocks of 32),
    # with 7 unsigned events at the end: the roots are rebuilt from the tree above the blocks
    # and the frontier of the partial block under each signed size.
    async with backend.open() as led:
        for base, signed in ((0, 301), (301, 999)):
            await led.append([decision(i, f"fp-{i % 5}") for i in range(base, signed)])
            await led.sequence()
        await led.append([decision(i, f"fp-{i % 5}") for i in range(999, 1006)])
    sequential, *parallel = await _reports(backend, (1, 2, 3))
    assert sequential.ok
    assert sequential.checkpoints == 2
    assert all(report == sequential for report in parallel)
    assert [r.segments for r in parallel] == [2, 3]


@pytest.mark.parametrize(
    ("options", "refusal"),
    [
        ({"workers": 0}, "workers must be a positive int or None, got 0"),
        ({"workers": True}, "workers must be a positive int or None, got True"),
        ({"workers": 1.5}, "workers must be a positive int or None, got 1.5"),
        ({"chunk": 0}, "chunk must be a positive int (events per read), got 0"),
        ({"chunk": -5}, "chunk must be a positive int (events per read), got -5"),
        ({"chunk": "7"}, "chunk must be a positive int (events per read), got '7'"),
    ],
)
async def test_chunk_and_workers_must_be_positive(
    tmp_path: Path, options: dict[str, object], refusal: str
) -> None:
    backend = _sqlite(tmp_path)
    await _fill(backend)
    async with backend.open() as led:
        with pytest.raises(InvalidEventError) as raised:
            await led.verify(**options)  # type: ignore[arg-type]
    assert str(raised.value) == refusal


def test_the_cli_verifies_with_workers(tmp_path: Path) -> None:
    backend = _sqlite(tmp_path)
    asyncio.run(_fill(backend))
    runner = CliRunner()
    env = {"UNHARDCODED_HOME": str(tmp_path)}
    args = ["ledger", "verify", "--db", backend.url, "--workers"]
    done = runner.invoke(main, [*args, "2"], env=env)
    assert done.exit_code == 0, done.output
    assert f"ledger intact: {TOTAL} events, 4 signed checkpoints" in done.stdout
    assert runner.invoke(main, [*args, "auto"], env=env).exit_code == 0
    assert runner.invoke(main, args[:-1], env=env).exit_code == 0  # auto, the default
    for bad in ("0", "two", "257"):
        refused = runner.invoke(main, [*args, bad], env=env)
        assert refused.exit_code == 2
        assert "--workers" in refused.output
        assert "'auto' or a process count from 1 to 256" in refused.output
    for bad in ("0", "-1", str(2**80)):  # an error, never a TAMPERED verdict on an intact ledger
        refused = runner.invoke(main, [*args[:-1], "--chunk", bad], env=env)
        assert refused.exit_code == 2, refused.output
        assert "TAMPERED" not in refused.output
        assert f"'--chunk': {bad} is not in the range 1<=x<=1000000." in refused.output


async def test_auto_goes_parallel_only_from_the_threshold_on(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(backend)
    (small,) = await _reports(backend, (None,))
    assert small.ok
    assert small.segments == 1
    monkeypatch.setattr("ledger._verifyrun.PARALLEL_MIN_EVENTS", TOTAL)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    (large,) = await _reports(backend, (None,))
    assert large == small
    assert large.segments == 2
