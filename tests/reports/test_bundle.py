"""Audit bundles: an untouched bundle verifies offline (no database); any change to any file, a
removed or added decision, or a wrong key makes `bundle verify` fail, naming what is wrong."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from ledger import SigningKey
from reports import create_bundle, verify_bundle
from tests.reports.support import Populated, populate, populate_sqlite
from tests.support.service_backends import Backend
from unhardcoded.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _rewrite(
    source: Path,
    target: Path,
    change: Callable[[dict[str, bytes]], None],
    *,
    rehash: bool = True,
) -> Path:
    """Copy a bundle, letting `change` edit its files; `rehash` makes the manifest agree again
    (what a forger would do: the manifest is not signed)."""
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    change(files)
    if rehash:
        manifest = json.loads(files["manifest.json"])
        manifest["files"] = {
            name: hashlib.sha256(data).hexdigest()
            for name, data in sorted(files.items())
            if name != "manifest.json"
        }
        files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


async def _bundle(backend: Backend, tmp_path: Path) -> tuple[Path, Populated, str]:
    async with backend.service() as service:
        done = await populate(service, rounds=1)
        out = tmp_path / "acme.zip"
        summary = await create_bundle(service.ledger, out, tenant="acme")
        key = service.ledger.public_key()
    assert summary.decisions == sum(d.tenant == "acme" for d in done.decisions)
    return out, done, key


def _decisions_file(files: dict[str, bytes]) -> str:
    (name,) = [n for n in files if n.startswith("data/decisions/")]
    return name


async def test_untouched_bundle_verifies_and_tampering_is_named(
    backend: Backend, tmp_path: Path
) -> None:
    bundle, done, key = await _bundle(backend, tmp_path)
    result = verify_bundle(bundle, key=key)
    assert result.problems == []
    acme = {str(d.decision_id) for d in done.decisions if d.tenant == "acme"}
    assert result.decisions == len(acme)

    # Removed decision: its row is gone from the data (manifest re-hashed).
    victim = sorted(acme)[0]

    def remove_row(files: dict[str, bytes]) -> None:
        name = _decisions_file(files)
        table = pq.read_table(io.BytesIO(files[name]))
        keep = pa.compute.not_equal(table["decision_id"], victim)
        sink = io.BytesIO()
        pq.write_table(table.filter(keep), sink)
        files[name] = sink.getvalue()

    removed = verify_bundle(_rewrite(bundle, tmp_path / "removed.zip", remove_row), key=key)
    assert any(f"proven decision {victim} is missing" in p for p in removed.problems)

    # Added decision: a row with an id no proven event has.
    forged = "01890000-0000-7000-8000-000000000000"

    def add_row(files: dict[str, bytes]) -> None:
        name = _decisions_file(files)
        table = pq.read_table(io.BytesIO(files[name]))
        extra = table.slice(0, 1).to_pylist()
        extra[0]["decision_id"] = forged
        sink = io.BytesIO()
        pq.write_table(pa.concat_tables([table, pa.Table.from_pylist(extra, table.schema)]), sink)
        files[name] = sink.getvalue()

    added = verify_bundle(_rewrite(bundle, tmp_path / "added.zip", add_row), key=key)
    assert any(f"decision {forged} has no proven event" in p for p in added.problems)

    # A decision's event dropped from the ledger file: its data row has no proof any more.
    def drop_event(files: dict[str, bytes]) -> None:
        lines = files["ledger/events.jsonl"].decode().splitlines(keepends=True)
        files["ledger/events.jsonl"] = "".join(
            line for line in lines if json.loads(line)["event_id"] != victim
        ).encode()

    dropped = verify_bundle(_rewrite(bundle, tmp_path / "dropped.zip", drop_event), key=key)
    assert any(f"decision {victim} has no proven event" in p for p in dropped.problems)

    # Wrong key: another ledger's verifier key.
    other = SigningKey.from_private_bytes(f"unhardcoded/{'0' * 8}", bytes(32)).verifier_key()
    wrong = verify_bundle(bundle, key=other)
    assert any("checkpoint.txt: does not verify" in p for p in wrong.problems)
    assert any("public_key.txt: the bundled key is not the given key" in p for p in wrong.problems)


async def test_one_changed_byte_in_any_file_fails(tmp_path: Path) -> None:
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path}/l.db", None, tmp_path / "home")
    bundle, _, key = await _bundle(backend, tmp_path)
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert len(names) >= 15
    for i, name in enumerate(names):
        for rehash in (False, True):

            def flip(files: dict[str, bytes], name: str = name) -> None:
                data = bytearray(files[name])
                data[len(data) // 2] ^= 0x01
                files[name] = bytes(data)

            # With the manifest re-hashed (what a forger would do), every text file is still
            # checked byte for byte against the proven events; a Parquet file is checked for its
            # content (a flipped byte in its footer padding may leave the rows unchanged), which
            # the removed/added decision cases cover.
            if rehash and (name == "manifest.json" or name.endswith(".parquet")):
                continue
            changed = _rewrite(bundle, tmp_path / f"t{i}{rehash}.zip", flip, rehash=rehash)
            result = verify_bundle(changed, key=key)
            assert result.problems, f"a changed byte in {name} (rehash={rehash}) went unnoticed"
            if not rehash and name != "manifest.json":
                assert any(p.startswith(f"{name}: SHA-256") for p in result.problems), name


def _offline_env() -> dict[str, str]:
    env = dict(os.environ)
    env["UNHARDCODED_DATABASE_URL"] = "postgresql+asyncpg://nobody@127.0.0.1:9/nowhere"
    env["UNHARDCODED_HOME"] = "/nonexistent/unhardcoded-home"
    return env


def _verify_offline(*args: str) -> subprocess.CompletedProcess[str]:
    """`unhardcoded bundle verify` in a fresh process whose database URL points nowhere."""
    return subprocess.run(
        [sys.executable, "-m", "unhardcoded", "bundle", "verify", *args],
        cwd=ROOT,
        env=_offline_env(),
        capture_output=True,
        text=True,
        check=False,
    )


async def test_verify_in_a_process_with_no_database(backend: Backend, tmp_path: Path) -> None:
    bundle, done, key = await _bundle(backend, tmp_path)
    key_file = tmp_path / "ledger.pub"
    key_file.write_text(key + "\n")
    ran = _verify_offline(str(bundle), "--key", str(key_file), "--json")
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["ok"] is True
    assert result["key_source"] == "given"
    assert result["decisions"] == sum(d.tenant == "acme" for d in done.decisions)

    def flip(files: dict[str, bytes]) -> None:
        files["report.json"] = files["report.json"].replace(b'"acme"', b'"acmf"', 1)

    bad = _rewrite(bundle, tmp_path / "bad.zip", flip)
    failed = _verify_offline(str(bad), "--key", key)
    assert failed.returncode == 1
    assert "problem: report.json: not the report of the proven data" in failed.stderr


def test_cli_bundle_create_and_verify(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    home = tmp_path / "home"
    populate_sqlite(url, home)
    runner = CliRunner()
    out = tmp_path / "globex.zip"
    created = runner.invoke(
        main,
        [
            "bundle",
            "create",
            "--tenant",
            "globex",
            str(out),
            "--db",
            url,
            "--home",
            str(home),
            "--quiet",
        ],
    )
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["decisions"] == 4
    checked = runner.invoke(main, ["bundle", "verify", str(out)])
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.startswith("ok: 4 decisions")
    assert "key inside the bundle" in checked.stdout
    missing = runner.invoke(main, ["bundle", "verify", str(tmp_path / "nope.zip")])
    assert missing.exit_code == 2
    assert "not a readable zip file" in missing.stderr
    bad_key = runner.invoke(main, ["bundle", "verify", str(out), "--key", "not-a-key"])
    assert bad_key.exit_code == 2
    assert "--key" in bad_key.stderr


@pytest.mark.parametrize("name", ["bundle.tar", "bundle"])
def test_bundle_name_must_be_a_zip(tmp_path: Path, name: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    populate_sqlite(url, tmp_path / "home")
    result = CliRunner().invoke(
        main,
        [
            "bundle",
            "create",
            "--tenant",
            "acme",
            str(tmp_path / name),
            "--db",
            url,
            "--home",
            str(tmp_path / "home"),
        ],
    )
    assert result.exit_code == 2
    assert "must end in .zip" in result.stderr
