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


def test_a_bundle_with_no_decisions_says_so_and_proves_it(tmp_path: Path) -> None:
    """A tenant with no decisions, or a period with none, makes an explicit empty bundle (a
    note on stderr and in the JSON, like `export` and `report`) whose completeness proof shows
    there is nothing to hold; an output folder that does not exist is refused before any work."""
    url = f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    home = tmp_path / "home"
    populate_sqlite(url, home)
    runner = CliRunner()
    common = ["--db", url, "--home", str(home), "--quiet"]
    cases = {
        "nobody": (["--tenant", "nobody"], "tenant 'nobody' has no decisions in the ledger"),
        "later": (
            ["--tenant", "globex", "--since", "2099-01-01T00:00:00Z"],
            "none of the 4 decisions of tenant 'globex' was recorded in the period",
        ),
    }
    for name, (args, why) in cases.items():
        out = tmp_path / f"{name}.zip"
        created = runner.invoke(main, ["bundle", "create", *args, str(out), *common])
        assert created.exit_code == 0, created.output
        assert f"note: {why}" in created.stderr
        assert "the bundle is empty" in created.stderr
        summary = json.loads(created.stdout)
        assert summary["decisions"] == 0
        assert why in summary["note"]
        checked = verify_bundle(out)
        assert checked.ok, checked.problems
        assert checked.decisions == 0
        assert checked.completeness is not None
    nowhere = tmp_path / "missing" / "b.zip"
    refused = runner.invoke(main, ["bundle", "create", "--tenant", "globex", str(nowhere), *common])
    assert refused.exit_code == 2
    assert "does not exist" in refused.stderr
    assert not nowhere.parent.exists()


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


def _edit_events(
    edit: Callable[[list[dict[str, object]]], None],
) -> Callable[[dict[str, bytes]], None]:
    """A change to `ledger/events.jsonl`, one parsed line per event."""

    def change(files: dict[str, bytes]) -> None:
        lines = [json.loads(line) for line in files["ledger/events.jsonl"].decode().splitlines()]
        edit(lines)
        files["ledger/events.jsonl"] = "".join(json.dumps(line) + "\n" for line in lines).encode()

    return change


def _drop_type(kind: str) -> Callable[[list[dict[str, object]]], None]:
    def edit(lines: list[dict[str, object]]) -> None:
        lines[:] = [line for line in lines if line["type"] != kind]

    return edit


def _first(kind: str, lines: list[dict[str, object]]) -> dict[str, object]:
    return next(line for line in lines if line["type"] == kind)


def _set_manifest(**fields: object) -> Callable[[dict[str, bytes]], None]:
    def change(files: dict[str, bytes]) -> None:
        files["manifest.json"] = json.dumps(
            {**json.loads(files["manifest.json"]), **fields}
        ).encode()

    return change


def _payload_edit(lines: list[dict[str, object]]) -> None:
    decision = _first("DecisionMade", lines)
    decision["payload"] = str(decision["payload"]).replace('"tenant":"acme"', '"tenant":"acmf"')


def _index_edit(lines: list[dict[str, object]]) -> None:
    proof = _first("DecisionMade", lines)["proof"]
    assert isinstance(proof, dict)
    proof["leaf_index"] += 1


def _path_edit(lines: list[dict[str, object]]) -> None:
    proof = _first("DecisionMade", lines)["proof"]
    assert isinstance(proof, dict)
    proof["hashes"][0] = "00" * 32


def _bad_line(files: dict[str, bytes]) -> None:
    files["ledger/events.jsonl"] += b"{not json\n"


# (what, change to the files, re-hash the manifest like a forger, a problem must contain this)
STRUCTURE: list[tuple[str, Callable[[dict[str, bytes]], None], bool, str]] = [
    ("no manifest", lambda f: f.pop("manifest.json"), False, "manifest.json: missing"),
    (
        "a manifest that is not JSON",
        lambda f: f.update({"manifest.json": b"{"}),
        False,
        "manifest.json: not JSON",
    ),
    (
        "another bundle format",
        _set_manifest(format="other/1"),
        False,
        "manifest.json/format: expected",
    ),
    (
        "manifest files not an object",
        _set_manifest(files=[]),
        False,
        "manifest.json/files: expected an object",
    ),
    (
        "a listed file missing",
        lambda f: f.pop("report.html"),
        False,
        "report.html: listed in the manifest but not in the bundle",
    ),
    (
        "an unlisted file",
        lambda f: f.update({"extra.txt": b"x"}),
        False,
        "extra.txt: in the bundle but not listed in the manifest",
    ),
    (
        "another tree size",
        _set_manifest(tree_size=1),
        False,
        "manifest.json/tree_size: 1 is not the checkpoint's",
    ),
    ("no checkpoint", lambda f: f.pop("checkpoint.txt"), True, "checkpoint.txt: missing"),
    ("no events", lambda f: f.pop("ledger/events.jsonl"), True, "ledger/events.jsonl: missing"),
    ("an event line that is not JSON", _bad_line, True, "not a bundled event (JSONDecodeError"),
    ("an event's payload changed", _edit_events(_payload_edit), True, "its bytes hash to leaf"),
    ("a proof for another leaf index", _edit_events(_index_edit), True, "the proof is for leaf"),
    ("a proof with a changed path", _edit_events(_path_edit), True, "inclusion proof fails"),
    (
        "another tenant in the manifest",
        _set_manifest(tenant="globex"),
        True,
        "tenant 'acme', the bundle is 'globex'",
    ),
    (
        "a period that excludes the decisions",
        _set_manifest(since="2099-01-01T00:00:00Z"),
        True,
        "recorded outside the bundle's period",
    ),
    (
        "the catalog event dropped",
        _edit_events(_drop_type("CatalogPublished")),
        True,
        "is not among the proven events",
    ),
    (
        "the policy events dropped",
        _edit_events(_drop_type("PolicyRecorded")),
        True,
        "is not among the proven events",
    ),
    (
        "the outcome events dropped",
        _edit_events(_drop_type("OutcomeRecorded")),
        True,
        "is not among the proven events",
    ),
    ("the decisions dropped", _edit_events(_drop_type("DecisionMade")), True, "its decision"),
    (
        "a policy file removed",
        lambda f: f.pop(next(n for n in f if n.startswith("policies/"))),
        True,
        "missing (the decisions refer to policy digest",
    ),
    (
        "a catalog file that is not a catalog",
        lambda f: f.update({next(n for n in f if n.startswith("catalogs/")): b"[]"}),
        True,
        "not a catalog",
    ),
]


async def test_a_misshapen_bundle_names_what_is_wrong(tmp_path: Path) -> None:
    """Each structural failure an auditor may meet gets its own problem line, naming the file
    (and the JSON field or event line) at fault."""
    backend = Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path}/l.db", None, tmp_path / "home")
    bundle, _, key = await _bundle(backend, tmp_path)
    unnamed = []
    for i, (what, change, rehash, text) in enumerate(STRUCTURE):
        changed = _rewrite(bundle, tmp_path / f"s{i}.zip", change, rehash=rehash)
        problems = verify_bundle(changed, key=key).problems
        if not any(text in p for p in problems):
            unnamed.append(f"{what}: expected {text!r} among {problems}")
    assert not unnamed, "\n".join(unnamed)
