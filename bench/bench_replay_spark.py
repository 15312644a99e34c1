"""Benchmark of `--mode original` over Parquet on DuckDB and on Spark (local mode), next to the
replay service on the ledger, in the same run, with the same mismatches.

1. The replay service (`ReplayService.original`) over the ledger: decisions/s and the set of
   mismatching decision ids (the reference).
2. A `decisions` dataset in Parquet: an `export parquet` folder (`--export DIR`) or, without
   it, the columns the replay SQL reads (the export's names and types) written from the ledger
   page by page. `--forge N` first rewrites N decisions of a copy of a SQLite ledger (their
   plan reversed, the immutability triggers dropped, as an attacker would) so that there are
   mismatches to find.
3. The distinct groups (`GROUP_KEYS_SQL`, on DuckDB), each evaluated once with the policy core
   (`evaluate_groups`), written as `replay_groups.parquet`.
4. `MISMATCHES_SQL`, the same text, on DuckDB and on Spark SQL (`pyspark`, `local[*]`) over
   those files: wall time (Spark: session start apart), mismatches, equality with step 1.

Installs nothing: Spark runs when `pyspark` is importable (`pip install pyspark`; Java 17).

    python bench/bench_replay_spark.py --db sqlite+aiosqlite:////tmp/bench1m.db --forge 100
    python bench/bench_replay_spark.py --db URL --export /tmp/export-folder [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ledger import canonical_json, open_ledger
from router.services.decisions import DECISION_MADE, DecisionService
from router.services.replay import (
    GROUP_KEYS_SQL,
    MISMATCHES_SQL,
    DecisionFilter,
    ReplayService,
    evaluate_groups,
)

HOME = "/tmp/.bench_replay_home"

# The export's `decisions` columns the replay SQL reads, from the DecisionMade payloads.
_DECISIONS_SQL = r"""
SELECT lower(hex(event_id)) AS h, position, j.tenant,
       regexp_extract(j.policy.fingerprint, '^(.*?)(?: \(([^()]*)\))?$', 1) AS policy_fingerprint,
       nullif(regexp_extract(j.policy.fingerprint, '^(.*?)(?: \(([^()]*)\))?$', 2), '')
           AS policy_ir_version,
       j.policy.digest AS policy_digest, j.catalog_version, j.evaluator_version,
       j.tokens."in" AS tokens_in, j.tokens.out AS tokens_out,
       j.filter.outcome AS outcome_digest, j.filter.passing::INTEGER AS passing,
       j.rank.order_sha256 AS order_digest, j.selected.index::INTEGER AS selected_index,
       j.selected.id AS selected_id, list_transform(j.plan, lambda i: i + c.base) AS plan
FROM (SELECT event_id, position, json_transform(payload, '{
    "tenant": "VARCHAR", "catalog_version": "VARCHAR", "evaluator_version": "VARCHAR",
    "policy": {"fingerprint": "VARCHAR", "digest": "VARCHAR"},
    "tokens": {"in": "BIGINT", "out": "BIGINT"},
    "filter": {"outcome": "VARCHAR", "passing": "BIGINT"}, "rank": {"order_sha256": "VARCHAR"},
    "selected": {"index": "BIGINT", "id": "VARCHAR"}, "plan": "BIGINT[]"}') AS j FROM page) p
JOIN catalog_base c ON c.catalog_version = j.catalog_version
"""


def _forge(url: str, tmp: str, count: int) -> str:
    """A copy of the SQLite ledger at `url` with `count` decisions' plans reversed."""
    source = url.split("///", 1)[1]
    target = os.path.join(tmp, "forged.db")
    shutil.copyfile(source, target)
    db = sqlite3.connect(target)
    for name in ("update", "delete"):
        db.execute(f"DROP TRIGGER IF EXISTS ledger_events_refuse_{name}")
    (total,) = db.execute("SELECT count(*) FROM ledger_events WHERE type = ?", (DECISION_MADE,))
    step = max(1, total[0] // max(count, 1))
    rows = db.execute(
        "SELECT position, payload FROM ledger_events WHERE type = ? AND position % ? = 0 "
        "ORDER BY position LIMIT ?",
        (DECISION_MADE, step, count),
    ).fetchall()
    forged = 0
    for position, payload in rows:
        doc = json.loads(payload)
        if len(doc["plan"]) < 2:
            continue
        doc["plan"] = list(reversed(doc["plan"]))
        db.execute(
            "UPDATE ledger_events SET payload = ? WHERE position = ?",
            (canonical_json(doc), position),
        )
        forged += 1
    db.commit()
    db.close()
    print(f"forged {forged} decisions in a copy of the ledger", file=sys.stderr)
    return f"sqlite+aiosqlite:///{target}"


async def _service_run(url: str) -> dict[str, Any]:
    bad: set[str] = set()

    def sink(rows: list[dict[str, Any]]) -> None:
        bad.update(r["decision_id"] for r in rows if not r["ok"])

    async with open_ledger(url, home=HOME) as led:
        start = time.perf_counter()
        report = await ReplayService(DecisionService(led)).original(
            DecisionFilter(), sink=sink, record=False
        )
        seconds = time.perf_counter() - start
    return {
        "decisions": report.decisions,
        "seconds": round(seconds, 2),
        "decisions_per_s": round(report.decisions / seconds),
        "mismatches": report.mismatches,
        "ids": bad,
    }


async def _write_decisions(url: str, folder: Path) -> float:
    """The `decisions` columns of the replay SQL as Parquet, page by page (bounded memory)."""
    start = time.perf_counter()
    con = duckdb.connect(config={"memory_limit": "256MB"})
    writer: pq.ParquetWriter | None = None
    async with open_ledger(url, home=HOME) as led:
        service = DecisionService(led)
        # Plans hold catalog indexes; the dataset holds entry ids: every catalog's ids in one
        # array, each catalog from its `base`, and one `take` per page.
        ids: list[str] = []
        con.execute("CREATE TABLE catalog_base (catalog_version VARCHAR, base BIGINT)")
        async for records in led.scan(types=(DECISION_MADE,), batch=20_000):
            positions, event_ids, _, _, _, payloads, *_ = zip(*records, strict=True)
            page = pa.table(
                {
                    "event_id": pa.array([bytes(i) for i in event_ids], pa.binary()),
                    "position": pa.array(positions, pa.int64()),
                    "payload": pa.array(payloads, pa.binary()).cast(pa.string()),
                }
            )
            con.register("page", page)
            versions = con.sql(
                "SELECT DISTINCT json_extract_string(payload, '$.catalog_version') FROM page "
                "WHERE json_extract_string(payload, '$.catalog_version') NOT IN "
                "(SELECT catalog_version FROM catalog_base)"
            ).fetchall()
            for (version,) in versions:
                catalog = await service.catalog_version(version)
                con.execute("INSERT INTO catalog_base VALUES (?, ?)", [version, len(ids)])
                ids.extend(e.id for e in catalog.entries)
            rows = con.sql(
                f"""SELECT concat_ws('-', h[1:8], h[9:12], h[13:16], h[17:20], h[21:32])
                    AS decision_id, * EXCLUDE (h) FROM ({_DECISIONS_SQL})"""
            ).to_arrow_table()
            plan = rows.column("plan").combine_chunks()
            named = pa.ListArray.from_arrays(
                plan.offsets, pa.array(ids).take(plan.flatten()), mask=plan.is_null()
            )
            rows = rows.set_column(rows.schema.get_field_index("plan"), "plan", named)
            if writer is None:
                writer = pq.ParquetWriter(folder / "part-0.parquet", rows.schema)
            writer.write_table(rows)
    if writer is not None:
        writer.close()
    con.close()
    return time.perf_counter() - start


async def _groups(url: str, decisions: str, out: Path) -> tuple[int, float]:
    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"CREATE VIEW decisions AS SELECT * FROM read_parquet('{decisions}')")
    keys = con.sql(GROUP_KEYS_SQL).fetchall()
    async with open_ledger(url, home=HOME) as led:
        rows = await evaluate_groups(DecisionService(led), keys)
    pq.write_table(rows, out)
    con.close()
    return rows.num_rows, time.perf_counter() - start


def _duckdb_run(decisions: str, groups: Path) -> dict[str, Any]:
    start = time.perf_counter()
    con = duckdb.connect(config={"memory_limit": "256MB"})
    con.execute(f"CREATE VIEW decisions AS SELECT * FROM read_parquet('{decisions}')")
    con.execute(f"CREATE VIEW replay_groups AS SELECT * FROM read_parquet('{groups}')")
    ids = {row[0] for row in con.sql(f"SELECT decision_id FROM ({MISMATCHES_SQL})").fetchall()}
    seconds = time.perf_counter() - start
    con.close()
    return {"seconds": round(seconds, 2), "mismatches": len(ids), "ids": ids}


def _spark_run(decisions: str, groups: Path) -> dict[str, Any] | str:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return "pyspark is not installed (pip install pyspark; needs Java 17)"
    start = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[*]")
        .appName("unhardcoded-replay")
        .config("spark.driver.memory", "1g")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    session = time.perf_counter() - start
    start = time.perf_counter()
    spark.read.parquet(decisions).createOrReplaceTempView("decisions")
    spark.read.parquet(str(groups)).createOrReplaceTempView("replay_groups")
    ids = {row[0] for row in spark.sql(f"SELECT decision_id FROM ({MISMATCHES_SQL})").collect()}
    seconds = time.perf_counter() - start
    version = spark.version
    spark.stop()
    return {
        "spark": version,
        "session_seconds": round(session, 2),
        "seconds": round(seconds, 2),
        "mismatches": len(ids),
        "ids": ids,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, metavar="URL", help="a ledger made by gen_ledger")
    parser.add_argument("--export", type=Path, default=None, help="an `export parquet` folder")
    parser.add_argument("--forge", type=int, default=0, help="N decisions forged (SQLite)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = _forge(args.db, tmp, args.forge) if args.forge else args.db
        figures: dict[str, Any] = {"service": asyncio.run(_service_run(url))}
        if args.export is not None:
            decisions = str(args.export / "decisions" / "**" / "*.parquet")
        else:
            folder = Path(tmp) / "decisions"
            folder.mkdir()
            figures["write_decisions_seconds"] = round(
                asyncio.run(_write_decisions(url, folder)), 2
            )
            decisions = str(folder / "*.parquet")
        groups = Path(tmp) / "replay_groups.parquet"
        count, seconds = asyncio.run(_groups(url, decisions, groups))
        figures["groups"] = {"groups": count, "seconds": round(seconds, 2)}
        figures["duckdb"] = _duckdb_run(decisions, groups)
        figures["spark"] = _spark_run(decisions, groups)
    reference = figures["service"].pop("ids")
    decided = figures["service"]["decisions"]
    for engine in ("duckdb", "spark"):
        result = figures[engine]
        if isinstance(result, dict):
            result["same_mismatches"] = result.pop("ids") == reference
            result["decisions_per_s"] = round(decided / max(result["seconds"], 1e-9))
    figures["load_average"] = os.getloadavg()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    s = figures["service"]
    print(
        f"replay service (ledger): {s['decisions']:,} decisions in {s['seconds']} s = "
        f"{s['decisions_per_s']:,}/s, {s['mismatches']:,} mismatches"
    )
    if "write_decisions_seconds" in figures:
        print(
            f"decisions Parquet written from the ledger in {figures['write_decisions_seconds']} s"
        )
    g = figures["groups"]
    print(f"{g['groups']:,} groups evaluated once, written in {g['seconds']} s")
    for engine in ("duckdb", "spark"):
        r = figures[engine]
        if isinstance(r, str):
            print(f"{engine}: skipped: {r}")
            continue
        extra = (
            f" (Spark {r['spark']}, session start {r['session_seconds']} s)" if "spark" in r else ""
        )
        print(
            f"{engine}: join in {r['seconds']} s = {r['decisions_per_s']:,} decisions/s, "
            f"{r['mismatches']:,} mismatches, same as the service: {r['same_mismatches']}{extra}"
        )
    print(f"load average {figures['load_average']}")


if __name__ == "__main__":
    main()
