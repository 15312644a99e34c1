"""The decision record's commands: rank --record, ledger show/erase-body/decisions, catalog
publish/list/diff and the default catalog, on a SQLite file."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from router.core import Policy
from router.services.catalogs import bundled_catalog, bundled_policy_document
from router.services.decisions import Attempt, DecisionService
from unhardcoded.cli import main
from unhardcoded.db import migrated_ledger

ROOT = Path(__file__).resolve().parents[2]
POLICY = str(ROOT / "router" / "data" / "policies" / "enterprise-eu.json")


class Db:
    def __init__(self, tmp_path: Path) -> None:
        self.file = tmp_path / "ledger.db"
        self.url = f"sqlite+aiosqlite:///{self.file}"
        self.home = tmp_path / "home"

    def args(self) -> list[str]:
        return ["--db", self.url, "--home", str(self.home)]

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, *self.args()])

    def subprocess(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "unhardcoded", *args, *self.args()],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )


def test_rank_record_then_show_from_a_fresh_process(tmp_path: Path) -> None:
    db = Db(tmp_path)
    recorded = db.run("rank", "--policy", POLICY, "--record", "--tenant", "acme", "--json")
    assert recorded.exit_code == 0, recorded.output
    live = json.loads(recorded.stdout)
    assert live["preview"] is True
    assert live["tenant"] == "acme"
    assert live["selected"]["id"] == "google/gemini-3.5-flash@eu"
    shown = db.subprocess("ledger", "show", live["decision_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == live
    text = db.subprocess("ledger", "show", live["decision_id"])
    assert text.stdout.startswith(f"decision {live['decision_id']} (preview)\ntenant   acme\n")
    assert "selected" in text.stdout
    raw = db.run("ledger", "show", live["decision_id"], "--raw")
    assert json.loads(raw.stdout)["type"] == "DecisionMade"
    table = db.run("rank", "--policy", POLICY, "--record")
    assert table.stdout.splitlines()[-1].startswith("recorded preview decision ")
    listed = db.run("ledger", "decisions", "--tenant", "acme", "--json")
    assert [d["decision_id"] for d in json.loads(listed.stdout)["decisions"]] == [
        live["decision_id"]
    ]


def test_rank_record_when_nothing_passes_exits_3_and_records(tmp_path: Path) -> None:
    db = Db(tmp_path)
    policy = tmp_path / "none.json"
    policy.write_text(
        json.dumps(
            {
                "v": "sigma-pol/v1",
                "rules": [["eq", "region", "mars"]],
                "tokens": {"in": 1, "out": 1},
            }
        )
    )
    result = db.run("rank", "--policy", str(policy), "--record", "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["selected"] is None
    page = json.loads(db.run("ledger", "decisions", "--json").stdout)
    assert [d["selected"] for d in page["decisions"]] == [None]


def test_tenant_needs_record(tmp_path: Path) -> None:
    result = Db(tmp_path).run("rank", "--policy", POLICY, "--tenant", "acme")
    assert result.exit_code == 2
    assert "--tenant only applies with --record" in result.output


def test_rank_without_a_database_uses_the_bundled_catalog_and_creates_nothing(
    tmp_path: Path,
) -> None:
    db = Db(tmp_path)
    result = db.run("rank", "--policy", POLICY, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["catalog_version"] == bundled_catalog().version
    assert not db.file.exists()


def test_publish_list_diff_and_the_latest_version_becomes_the_default(tmp_path: Path) -> None:
    db = Db(tmp_path)
    document: dict[str, Any] = bundled_catalog().to_json()
    document["name"] = "trimmed"
    removed = document["entries"].pop(0)["id"]
    trimmed = tmp_path / "trimmed.json"
    trimmed.write_text(json.dumps(document))
    bundled = str(ROOT / "router" / "data" / "catalog.json")

    assert db.run("catalog", "list").stdout == "no catalog version is published\n"
    first = db.run("catalog", "publish", bundled)
    assert first.stdout.startswith("published: illustrative ")
    assert db.run("catalog", "publish", bundled).stdout.startswith("already published: ")
    second = json.loads(db.run("catalog", "publish", str(trimmed), "--json").stdout)
    assert second["created"] is True
    listed = json.loads(db.run("catalog", "list", "--json").stdout)
    assert [v["name"] for v in listed] == ["illustrative", "trimmed"]

    ranked = json.loads(db.run("rank", "--policy", POLICY, "--json").stdout)
    assert ranked["catalog_name"] == "trimmed"
    assert ranked["catalog_version"] == second["version"]

    diff = json.loads(
        db.run("catalog", "diff", listed[0]["version"][:12], "latest", "--json").stdout
    )
    assert [entry["id"] if isinstance(entry, dict) else entry for entry in diff["removed"]] == [
        removed
    ]
    unknown = db.run("catalog", "diff", "abcdef123", "latest")
    assert unknown.exit_code == 2
    assert "no published catalog version starts with abcdef123" in unknown.output


def test_erase_body_keeps_verify_green(tmp_path: Path) -> None:
    db = Db(tmp_path)

    async def record() -> str:
        async with migrated_ledger(db.url, home=db.home) as led:
            service = DecisionService(led, store_request_bodies=True)
            body = {"messages": [{"role": "user", "content": "my name is Ada"}]}
            catalog = bundled_catalog()
            policy = Policy.from_json(bundled_policy_document("vip"), catalog.schema)
            decision = await service.decide("acme", policy, catalog, request_body=body)
            return str(decision.decision_id)

    decision_id = asyncio.run(record())
    assert db.run("ledger", "checkpoint").exit_code == 0
    erased = db.run("ledger", "erase-body", decision_id)
    assert erased.exit_code == 0, erased.output
    assert db.run("ledger", "checkpoint").exit_code == 0
    verified = db.subprocess("ledger", "verify")
    assert verified.returncode == 0, verified.stderr
    shown = json.loads(db.run("ledger", "show", decision_id, "--json").stdout)
    assert shown["request_body"] == "erased"
    again = db.run("ledger", "erase-body", decision_id)
    assert again.exit_code == 0
    missing = db.run("ledger", "erase-body", "01900000-0000-7000-8000-000000000000")
    assert missing.exit_code == 2
    assert "no decision" in missing.output


def test_show_prints_the_attempts_and_decisions_lists_page_by_page(tmp_path: Path) -> None:
    db = Db(tmp_path)

    async def record() -> list[str]:
        async with migrated_ledger(db.url, home=db.home) as led:
            service = DecisionService(led)
            catalog = bundled_catalog()
            policy = Policy.from_json(bundled_policy_document("vip"), catalog.schema)
            first = await service.decide("acme", policy, catalog)
            plan = list(first.plan)
            await service.record_attempt(
                first,
                Attempt(
                    number=1, entry=plan[0], status="error", latency_ms=31.5, error_class="timeout"
                ),
            )
            await service.record_attempt(
                first, Attempt(number=2, entry=plan[1], status="ok", latency_ms=12.0)
            )
            second = await service.decide("globex", policy, catalog)
            return [str(first.decision_id), plan[0], plan[1], str(second.decision_id)]

    first, entry_1, entry_2, second = asyncio.run(record())
    text = db.run("ledger", "show", first).stdout
    assert text.startswith(f"decision {first}\ntenant   acme\n")
    assert text.endswith(
        f"attempts (2)\n  1. {entry_1}: error (timeout), 31.5 ms\n  2. {entry_2}: ok, 12 ms\n"
    )
    page = db.run("ledger", "decisions", "--limit", "1").stdout.splitlines()
    assert page[0].startswith(first)  # in recorded order
    assert f"  acme  {entry_1}" in page[0]
    assert page[1].startswith("next page: --cursor ")
    cursor = page[1].removeprefix("next page: --cursor ")
    rest = db.run("ledger", "decisions", "--limit", "1", "--cursor", cursor).stdout.splitlines()
    assert rest[0].startswith(second)
    assert "  globex  " in rest[0]
    assert all(not line.startswith("next page") for line in rest)


async def test_three_processes_record_the_catalog_and_the_policy_exactly_once(
    tmp_path: Path,
) -> None:
    db = Db(tmp_path)
    document: dict[str, Any] = bundled_catalog().to_json()
    document["name"] = "fresh"
    fresh = tmp_path / "fresh.json"
    fresh.write_text(json.dumps(document))
    async with migrated_ledger(db.url, home=db.home):
        pass  # migrated and keyed up front: the processes race on recording only
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "unhardcoded",
            "rank",
            "--policy",
            POLICY,
            "--catalog",
            str(fresh),
            "--record",
            "--tenant",
            f"p{i}",
            *db.args(),
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(3)
    ]
    for process in processes:
        _, stderr = await process.communicate()
        assert process.returncode == 0, stderr
    async with migrated_ledger(db.url, home=db.home) as led:
        types = [e.type for e in await led.read(0, 1000)]
    assert sorted(types) == sorted(
        ["CatalogPublished", "PolicyRecorded", "OutcomeRecorded", *["DecisionMade"] * 3]
    )
