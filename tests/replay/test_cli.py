"""`unhardcoded replay` on a SQLite file: summary, JSON, Parquet, progress, filters, exit codes
(0 clean, 1 mismatch, 2 bad input), and the same ledger from a fresh process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from click.testing import CliRunner, Result

from ledger import canonical_json
from router.core import Catalog
from router.services.decisions import DecisionService
from tests.ledger._backends import Backend as RawBackend
from tests.replay.support import POLICIES, Recorded, record_ledger
from unhardcoded.cli import main
from unhardcoded.db import migrated_ledger

ROOT = Path(__file__).resolve().parents[2]


class Db:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
        self.home = tmp_path / "home"

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(
            main, ["replay", *args, "--db", self.url, "--home", str(self.home)]
        )

    async def _record(self) -> Recorded:
        async with migrated_ledger(self.url, home=self.home) as led:
            return await record_ledger(DecisionService(led))

    def record(self) -> Recorded:
        return asyncio.run(self._record())

    def publish(self, catalog: Catalog) -> None:
        async def go() -> None:
            async with migrated_ledger(self.url, home=self.home) as led:
                await DecisionService(led).publish_catalog(catalog)

        asyncio.run(go())


def _pricier(recorded: Recorded) -> dict[str, Any]:
    doc = recorded.catalog.to_json()
    for entry in doc["entries"]:
        if entry["id"] in recorded.selected.values():
            entry["price_in"] = entry["price_in"] * 10 + 1
    return doc


def test_original_summary_json_and_parquet(tmp_path: Path) -> None:
    db = Db(tmp_path)
    recorded = db.record()
    text = db.run("--mode", "original")
    assert text.exit_code == 0, text.output
    assert "replay original: 48 decisions" in text.stdout
    assert "mismatches: 0" in text.stdout
    assert "ReplayRun " in text.stdout
    out = tmp_path / "rows.parquet"
    as_json = db.run("--mode", "original", "--json", "--parquet", str(out), "--tenant", "acme")
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    acme = [str(d) for d in recorded.ids if recorded.tenants[d] == "acme"]
    assert doc["decisions"] == len(acme) == 16
    assert doc["mismatches"] == 0
    assert doc["parameters"]["filter"]["tenant"] == "acme"
    table = pq.read_table(out)
    assert table.column("decision_id").to_pylist() == acme
    assert all(table.column("ok").to_pylist())
    assert set(table.column("tenant").to_pylist()) == {"acme"}


def test_against_a_published_version_a_file_and_a_policy(tmp_path: Path) -> None:
    db = Db(tmp_path)
    recorded = db.record()
    pricier = _pricier(recorded)
    db.publish(Catalog.from_json(pricier))
    out = tmp_path / "diffs.parquet"
    published = db.run("--against", "latest", "--json", "--parquet", str(out))
    assert published.exit_code == 0, published.output
    doc = json.loads(published.stdout)
    assert doc["mode"] == "against"
    assert doc["changed"] > 0
    assert set(doc["by_tenant"]) == {"acme", "globex", "initech"}
    assert sum(a["changed"] for a in doc["by_policy"].values()) == doc["changed"]
    table = pq.read_table(out)
    assert table.num_rows == 48
    assert sum(table.column("changed").to_pylist()) == doc["changed"]
    prefix = Catalog.from_json(pricier).version[:10]
    assert json.loads(db.run("--against", prefix, "--json").stdout)["changed"] == doc["changed"]
    file = tmp_path / "pricier.json"
    file.write_text(json.dumps(pricier))
    from_file = db.run("--against", str(file))
    assert from_file.exit_code == 0, from_file.output
    assert f"changed selection: {doc['changed']} " in from_file.stdout
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICIES[1]))
    one_policy = db.run("--against", str(file), "--policy", str(policy), "--json")
    assert one_policy.exit_code == 0, one_policy.output
    assert json.loads(one_policy.stdout)["parameters"]["policy"] is not None


def test_forged_decision_exits_1_naming_it(tmp_path: Path) -> None:
    db = Db(tmp_path)
    recorded = db.record()
    victim = next(d for d in recorded.ids if recorded.policy_of[d] is recorded.policies[0])
    raw = RawBackend("sqlite", db.url, None, db.home)

    async def forge() -> None:
        (row,) = await raw.sql(
            "SELECT position, payload FROM ledger_events WHERE event_id = :id",
            {"id": victim.bytes},
        )
        payload = json.loads(bytes(row[1]))
        payload["filter"]["passing"] += 1
        await raw.drop_guards()
        await raw.sql(
            "UPDATE ledger_events SET payload = :p WHERE position = :pos",
            {"p": canonical_json(payload), "pos": row[0]},
        )

    asyncio.run(forge())
    result = db.run("--mode", "original")
    assert result.exit_code == 1, result.output
    assert "mismatches: 1" in result.stdout
    assert f"decision {victim} " in result.stdout
    assert "filter.passing" in result.stdout
    # A fresh process reads the same ledger and agrees.
    fresh = subprocess.run(
        [sys.executable, "-m", "unhardcoded", "replay", "--mode", "original", "--json",
         "--no-record", "--db", db.url, "--home", str(db.home)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert fresh.returncode == 1, fresh.stderr
    assert json.loads(fresh.stdout)["examples"][0]["decision_id"] == str(victim)


def test_bad_input_exits_2_with_a_precise_message(tmp_path: Path) -> None:
    db = Db(tmp_path)
    recorded = db.record()
    cases = {
        (): "give --mode original, or --against CATALOG",
        ("--mode", "original", "--against", "latest"): "do not apply to --mode original",
        ("--mode", "against"): "--mode against needs --against CATALOG",
        ("--mode", "original", "--since", "yesterday"): "not an ISO 8601 time",
        ("--mode", "original", "--since", "2026-01-01T00:00:00"): "has no time zone",
        ("--mode", "original", "--decision", "nope"): "not a decision id",
        ("--against", "abcdef0123"): "no published catalog version starts with abcdef0123",
        ("--against", "nonsense!"): "not a catalog version reference",
        ("--mode", "original", "--decision", "00000000-0000-7000-8000-000000000000"): (
            "not recorded: 00000000-0000-7000-8000-000000000000"
        ),
    }
    for args, message in cases.items():
        result = db.run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    chosen = str(recorded.ids[3])
    one = db.run("--mode", "original", "--decision", chosen, "--json", "--progress")
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["decisions"] == 1
    assert "replayed 1/1 (100 %)" in one.stderr
