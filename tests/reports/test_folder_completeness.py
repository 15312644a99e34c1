"""Completeness of a tenant's export folder (docs/reports.md, "Completeness of a tenant's
export"): the manifest carries the boundaries and seals of the tenant's sequence with their
inclusion proofs, the rows their `sequence` numbers. Dropping any decision of the period from
the data — and rewriting everything an operator can rewrite (the Parquet data, the numbers of
the rows after it, the manifest) — fails `verify_export` naming completeness; an empty period is
proven empty the same way."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from reports import ReportsError, export_parquet, verify_export
from reports._schema import SCHEMAS
from reports._writer import partitioning
from tests.reports.support import populate, populate_sqlite
from tests.support.service_backends import Backend
from unhardcoded.cli import main


def _now() -> datetime:
    time.sleep(0.01)  # the next recorded event is strictly later than this instant
    now = datetime.now(UTC)
    time.sleep(0.01)
    return now


def _table(folder: Path) -> pa.Table:
    path = folder / "decisions"
    return ds.dataset(path, format="parquet", partitioning=partitioning("decisions")).to_table()


def _rewrite(folder: Path, table: pa.Table) -> None:
    """Rewrite the decisions dataset as an operator can: any rows, any numbers."""
    schema = SCHEMAS["decisions"]
    path = folder / "decisions"
    shutil.rmtree(path)
    ds.write_dataset(
        table.select(schema.names).cast(schema),
        path,
        format="parquet",
        partitioning=partitioning("decisions"),
        basename_template="part-{i}.parquet",
    )
    path.mkdir(exist_ok=True)


def _drop(folder: Path, decision_id: str, *, renumber: bool) -> None:
    """Drop one decision's row; `renumber` also moves every later row down by one number, so
    the rows stay gapless."""
    table = _table(folder)
    row = table.filter(pc.equal(table["decision_id"], decision_id)).to_pylist()[0]
    table = table.filter(pc.not_equal(table["decision_id"], decision_id))
    if renumber:
        later = pc.greater(table["sequence"], row["sequence"])
        shifted = pc.if_else(later, pc.subtract(table["sequence"], 1), table["sequence"])
        table = table.set_column(table.schema.get_field_index("sequence"), "sequence", shifted)
    _rewrite(folder, table)


def _manifest(folder: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return document


def _save(folder: Path, document: dict[str, Any]) -> None:
    (folder / "manifest.json").write_text(json.dumps(document, indent=2, sort_keys=True))


async def test_dropping_any_decision_fails_naming_completeness(
    backend: Backend, tmp_path: Path
) -> None:
    async with backend.service() as service:
        await populate(service, rounds=1)
        t1 = _now()
        await populate(service, rounds=1)
        t2 = _now()
        await populate(service, rounds=1)
        out = tmp_path / "acme"
        summary = await export_parquet(
            service.ledger, out, tenant="acme", since=t1, until=t2, prove=True
        )
        key = service.ledger.public_key()
    assert summary.decisions == 4
    result = verify_export(out, key=key, require_complete=True)
    assert result.problems == []
    assert result.decisions == 4
    assert result.completeness is not None
    # The last decision before t1 (version 4), the period's four, the first after t2.
    assert (result.completeness["first_version"], result.completeness["last_version"]) == (4, 9)
    assert result.completeness["proven_until"] == t2.isoformat().replace("+00:00", "Z")
    assert result.completeness == _manifest(out)["completeness"]
    rows = _table(out).sort_by("position").to_pylist()
    assert [r["sequence"] for r in rows] == [5, 6, 7, 8]

    # The rewrite itself is faithful: with nothing dropped, the folder still verifies.
    _rewrite(out, _table(out))
    assert verify_export(out, key=key).ok

    for row in rows:
        for renumber in (False, True):
            copy = tmp_path / f"drop-{row['sequence']}-{renumber}"
            shutil.copytree(out, copy)
            _drop(copy, row["decision_id"], renumber=renumber)
            found = verify_export(copy, key=key)
            what = f"version {row['sequence']} dropped (renumbered: {renumber})"
            assert found.problems, what
            assert all(p.startswith("completeness: ") for p in found.problems), (
                what,
                found.problems,
            )
            assert found.completeness is None, what

    # Dropping the proof with the row leaves a folder that proves nothing: the auditor who
    # requires a proof refuses it.
    stripped = tmp_path / "stripped"
    shutil.copytree(out, stripped)
    _drop(stripped, rows[0]["decision_id"], renumber=False)
    document = _manifest(stripped)
    del document["completeness"], document["completeness_proof"]
    _save(stripped, document)
    assert verify_export(stripped, key=key).ok
    assert verify_export(stripped, key=key, require_complete=True).problems == [
        "completeness: not proven, and required: its manifest carries no completeness proof "
        "(exported by an earlier release)"
    ]

    # A boundary left out of the proof: nothing proves the first row follows the period's start.
    unbounded = tmp_path / "unbounded"
    shutil.copytree(out, unbounded)
    document = _manifest(unbounded)
    document["completeness_proof"]["events"] = document["completeness_proof"]["events"][1:]
    _save(unbounded, document)
    found = verify_export(unbounded, key=key)
    assert found.problems
    assert all(p.startswith("completeness: ") for p in found.problems)

    # A forged boundary (its time moved before the period) no longer hashes to its leaf.
    forged = tmp_path / "forged"
    shutil.copytree(out, forged)
    document = _manifest(forged)
    document["completeness_proof"]["events"][-1]["recorded_at_us"] -= 10**9
    _save(forged, document)
    found = verify_export(forged, key=key)
    assert any("/leaf_hash" in p for p in found.problems), found.problems

    # Another ledger's key: the checkpoint does not open.
    other = "unhardcoded/x+00000000+" + "A" * 44
    with pytest.raises(ReportsError):
        verify_export(out, key=other)


async def test_an_empty_period_is_proven_empty(backend: Backend, tmp_path: Path) -> None:
    async with backend.service() as service:
        await populate(service, rounds=1)
        t1 = _now()
        t2 = _now()
        await populate(service, rounds=1)
        out = tmp_path / "empty"
        summary = await export_parquet(
            service.ledger, out, tenant="acme", since=t1, until=t2, prove=True
        )
        key = service.ledger.public_key()
    assert summary.decisions == 0
    result = verify_export(out, key=key, require_complete=True)
    assert result.problems == []
    assert result.completeness is not None
    assert (result.completeness["first_version"], result.completeness["last_version"]) == (4, 5)
    # A row of another period slipped in: named.
    async with backend.service() as service:
        later = tmp_path / "later"
        await export_parquet(service.ledger, later, tenant="acme", since=t2, prove=True)
    _rewrite(out, _table(later).slice(0, 1))  # the folder held no row
    found = verify_export(out, key=key)
    assert any("recorded outside the folder's period" in p for p in found.problems)


async def test_append_keeps_one_proof_for_the_whole_folder(
    backend: Backend, tmp_path: Path
) -> None:
    async with backend.service() as service:
        await populate(service, rounds=1)
        out = tmp_path / "open"
        first = await export_parquet(service.ledger, out, tenant="acme", prove=True)
        (seal,) = await service.ledger.stream("decisions/acme", 5, 10)
        assert seal.type == "DecisionsSealed"
        # The data stops at the seal, as the proof does.
        assert first.covered is not None
        assert first.covered["to_position"] == seal.position
        await populate(service, rounds=1)
        with pytest.raises(ReportsError, match="would leave that proof stale"):
            await export_parquet(service.ledger, out, append=True)
        await export_parquet(service.ledger, out, append=True, prove=True)
        key = service.ledger.public_key()
    result = verify_export(out, key=key, require_complete=True)
    assert result.problems == []
    assert result.decisions == 8
    assert result.completeness is not None
    # Versions 1..4, the first seal (now inside the folder's period), 6..9, the second seal.
    assert (result.completeness["first_version"], result.completeness["last_version"]) == (1, 10)
    events = _manifest(out)["completeness_proof"]["events"]
    assert [e["stream_version"] for e in events] == [5, 10]
    assert any("complete up to" in n for n in result.notes)


def test_cli_export_verify(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    home = tmp_path / "home"
    populate_sqlite(url, home)
    runner = CliRunner()
    args = ["--db", url, "--home", str(home), "--no-progress"]
    unproven = ["--tenant", "acme", "--no-proof"]
    for name, tenant in (("acme", ["--tenant", "acme"]), ("all", []), ("unproven", unproven)):
        result = runner.invoke(main, ["export", "parquet", str(tmp_path / name), *tenant, *args])
        assert result.exit_code == 0, result.output
    key = runner.invoke(main, ["ledger", "checkpoint", "--public-key", *args[:4]]).output.strip()
    result = runner.invoke(main, ["export", "verify", str(tmp_path / "acme"), "--key", key])
    assert result.exit_code == 0, result.output
    assert "ok: complete: the 4 decisions of decisions/acme" in result.output
    result = runner.invoke(
        main, ["export", "verify", str(tmp_path / "all"), "--key", key, "--require-complete"]
    )
    assert result.exit_code == 1
    assert "completeness: not proven, and required" in result.output
    assert "completeness" not in _manifest(tmp_path / "unproven")
    _drop(tmp_path / "acme", _table(tmp_path / "acme")["decision_id"][1].as_py(), renumber=True)
    result = runner.invoke(main, ["export", "verify", str(tmp_path / "acme"), "--json"])
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["ok"] is False
    assert document["key_source"] == "folder"
    assert document["problems"][0].startswith("completeness: ")


def test_append_to_a_folder_of_an_earlier_layout_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    home = tmp_path / "home"
    populate_sqlite(url, home)
    runner = CliRunner()
    args = ["--db", url, "--home", str(home), "--no-progress"]
    out = tmp_path / "old"
    assert runner.invoke(main, ["export", "parquet", str(out), *args]).exit_code == 0
    for path in (out / "decisions").rglob("*.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["sequence"]), path)
    result = runner.invoke(main, ["export", "parquet", str(out), "--append", *args])
    assert result.exit_code == 2
    assert "exported by an earlier release (no `sequence` column)" in result.output
