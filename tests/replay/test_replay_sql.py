"""`--mode original` as SQL over the exported `decisions` dataset: the groups evaluated once and
joined by `MISMATCHES_SQL` find exactly the decisions (and first fields) the replay service
finds, on DuckDB and — when pyspark is installed — on Spark SQL, with the same SQL text."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledger import canonical_json
from reports import export_parquet
from router.services.replay import (
    GROUP_KEYS_SQL,
    MISMATCHES_SQL,
    ReplayService,
    evaluate_groups,
)
from tests.ledger._backends import Backend as RawBackend
from tests.replay.support import record_ledger
from tests.support.service_backends import Backend


async def _forge(backend: Backend, forgeries: dict[uuid.UUID, Any]) -> None:
    raw = RawBackend(backend.name, backend.url, backend.search_path, backend.home)
    await raw.drop_guards()
    for decision_id, change in forgeries.items():
        (row,) = await raw.sql(
            "SELECT position, payload FROM ledger_events WHERE event_id = :id",
            {"id": decision_id.bytes},
        )
        payload = json.loads(bytes(row[1]))
        change(payload)
        await raw.sql(
            "UPDATE ledger_events SET payload = :p WHERE position = :pos",
            {"p": canonical_json(payload), "pos": row[0]},
        )


def _longer_plan(payload: dict[str, Any]) -> None:
    payload["plan"] = [*payload["plan"], payload["plan"][0]]


def _other_passing(payload: dict[str, Any]) -> None:
    payload["filter"]["passing"] += 1


def _alter_export(out: Path, forged: dict[str, str]) -> None:
    """Make the exported decisions say what the forged payloads say (the export itself refuses
    a forged decision: its trace does not rebuild)."""
    for path in (out / "decisions").rglob("*.parquet"):
        table = pq.read_table(path, partitioning=None)
        rows = table.to_pylist()
        hit = False
        for row in rows:
            change = forged.get(row["decision_id"])
            if change == "plan":
                row["plan"] = [*row["plan"], row["plan"][0]]
            elif change == "passing":
                row["passing"] += 1
            hit = hit or change is not None
        if hit:
            pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)


async def _forged_export(backend: Backend, out: Path) -> tuple[set[tuple[str, str]], Path]:
    """A recorded ledger, exported, then two decisions forged in the ledger and in the export
    alike: what the service finds, and the groups of the exported decisions evaluated once."""
    async with backend.service() as service:
        recorded = await record_ledger(service)
        await export_parquet(service.ledger, out)
    with_plans = [d for d in recorded.ids if recorded.selected[d] is not None]
    await _forge(backend, {with_plans[3]: _longer_plan, with_plans[7]: _other_passing})
    _alter_export(out, {str(with_plans[3]): "plan", str(with_plans[7]): "passing"})
    async with backend.service() as service:
        rows: list[dict[str, Any]] = []
        await ReplayService(service).original(record=False, sink=rows.extend)
        con = duckdb.connect()
        con.execute(f"CREATE VIEW decisions AS {_decisions(out)}")
        groups = await evaluate_groups(service, con.sql(GROUP_KEYS_SQL).fetchall())
    path = out / "replay_groups.parquet"
    pq.write_table(groups, path)
    return {(r["decision_id"], r["field"]) for r in rows if not r["ok"]}, path


def _decisions(out: Path) -> str:
    return f"SELECT * FROM read_parquet('{out}/decisions/**/*.parquet', hive_partitioning = true)"


async def test_the_sql_finds_what_the_service_finds_on_duckdb(
    backend: Backend, tmp_path: Path
) -> None:
    expected, groups = await _forged_export(backend, tmp_path / "x")
    assert {field for _, field in expected} == {"plan", "filter.passing"}
    con = duckdb.connect()
    con.execute(f"CREATE VIEW decisions AS {_decisions(tmp_path / 'x')}")
    con.execute(f"CREATE VIEW replay_groups AS SELECT * FROM read_parquet('{groups}')")
    found = {(row[0], row[3]) for row in con.sql(MISMATCHES_SQL).fetchall()}
    assert found == expected


async def test_the_same_sql_finds_it_on_spark(tmp_path: Path) -> None:
    sql = pytest.importorskip(
        "pyspark.sql", reason="pyspark is not installed (pip install pyspark)"
    )
    # The engine is what this test is about: a ledger on one backend is enough.
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path}/ledger.db", None, tmp_path / "h")
    expected, groups = await _forged_export(backend, tmp_path / "x")
    spark = (
        sql.SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    try:
        spark.read.parquet(str(tmp_path / "x" / "decisions")).createOrReplaceTempView("decisions")
        spark.read.parquet(str(groups)).createOrReplaceTempView("replay_groups")
        found = {(row[0], row[3]) for row in spark.sql(MISMATCHES_SQL).collect()}
    finally:
        spark.stop()
    assert found == expected
