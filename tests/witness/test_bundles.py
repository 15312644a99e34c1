"""Bundles and witnesses: a bundle carries its checkpoint's cosignatures and `bundle verify
--witness-key … --quorum N` requires N valid ones; a rewritten log, re-signed with the log's own
key, gets none from a real witness process (also after the witness restarts), so its bundles fail;
forged, missing and reused cosignatures fail too."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import CosignerKey, NoteSignature, SignedCheckpoint, parse_note, signature_line
from reports import ReportsError, create_bundle, verify_bundle
from router.services.decisions import DecisionService
from router.services.witness import Witness
from tests.reports.support import populate, populate_sqlite
from tests.witness._processes import env, run, serving, witness_init
from unhardcoded.cli import main
from unhardcoded.db import migrated_ledger


def _bundle(environ: dict[str, str], db: Path, out: Path) -> Path:
    url = f"sqlite+aiosqlite:///{db}"
    run(["bundle", "create", "--tenant", "acme", str(out), "--db", url, "--quiet"], environ)
    return out


def _verify(bundle: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["bundle", "verify", str(bundle), *args])
    return result.exit_code, result.stdout + result.stderr


def _snapshot(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def test_a_rewritten_log_gets_no_cosignature_and_its_bundles_fail(tmp_path: Path) -> None:
    base = env(tmp_path)
    home = tmp_path / "home"
    honest, rewritten = tmp_path / "honest.db", tmp_path / "rewritten.db"
    populate_sqlite(f"sqlite+aiosqlite:///{honest}", home)
    log_key = run(
        ["ledger", "checkpoint", "--public-key", "--db", f"sqlite+aiosqlite:///{honest}"], base
    ).strip()
    folder = tmp_path / "w1"
    vkey = witness_init(folder, "witness.test/w1", log_key, base)
    witness_args = ["--witness-key", vkey, "--quorum", "1"]
    with serving(["witness", "serve", "--dir", str(folder)], base) as witness_url:
        environ = {**base, "UNHARDCODED_WITNESSES": f"{witness_url} {vkey}"}
        first = _bundle(environ, honest, tmp_path / "first.zip")
        # The operator keeps a copy of the log here, and later rewrites history from it on.
        _snapshot(honest, rewritten)
        populate_sqlite(f"sqlite+aiosqlite:///{honest}", home)
        second = _bundle(environ, honest, tmp_path / "second.zip")
        for bundle in (first, second):
            code, output = _verify(bundle, "--key", log_key, *witness_args)
            assert code == 0, output
            assert "cosigned by 1 of 1 witnesses (quorum 1)" in output
        # Another history from the copy on, of the same size, signed with the log's own key:
        # the witness holds another tree of that size (a fork, 409).
        populate_sqlite(f"sqlite+aiosqlite:///{rewritten}", home)
        forked = _bundle(environ, rewritten, tmp_path / "forked.zip")
        # Grown further: no consistency proof leads from the cosigned tree to it (422).
        populate_sqlite(f"sqlite+aiosqlite:///{rewritten}", home)
        grown = _bundle(environ, rewritten, tmp_path / "grown.zip")
    for bundle in (forked, grown):
        # The log's key alone cannot tell: the rewritten log signed its checkpoints itself.
        assert _verify(bundle, "--key", log_key)[0] == 0
        code, output = _verify(bundle, "--key", log_key, *witness_args)
        assert code == 1
        assert "0 valid witness cosignature(s), the quorum is 1" in output
    assert [r.status for r in Witness(folder).refusals()] == [409, 422]
    # Restarted from its database, the witness keeps refusing the rewritten log.
    with serving(["witness", "serve", "--dir", str(folder)], base) as witness_url:
        environ = {**base, "UNHARDCODED_WITNESSES": f"{witness_url} {vkey}"}
        again = _bundle(environ, rewritten, tmp_path / "again.zip")
    assert _verify(again, "--key", log_key, *witness_args)[0] == 1
    assert [r.status for r in Witness(folder).refusals()] == [409, 422, 422]


# -- mutations ------------------------------------------------------------------------------------


def _edit_checkpoint(source: Path, target: Path, change: Callable[[str], str]) -> Path:
    """Copy a bundle with its checkpoint note edited and the manifest made to agree again
    (the manifest is not signed: a forger rebuilds it)."""
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["checkpoint.txt"] = change(files["checkpoint.txt"].decode()).encode()
    manifest = json.loads(files["manifest.json"])
    manifest["files"]["checkpoint.txt"] = hashlib.sha256(files["checkpoint.txt"]).hexdigest()
    files["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target


def _line_of(note: str, name: str) -> str:
    (line,) = [x + "\n" for x in note.splitlines() if x.startswith(f"\u2014 {name} ")]
    return line


@pytest.fixture
async def cosigned_bundles(tmp_path: Path) -> tuple[Path, Path, CosignerKey, CosignerKey]:
    """Two bundles of one ledger at two checkpoints, each cosigned by two witnesses."""

    w1, w2 = CosignerKey.generate("witness.test/w1"), CosignerKey.generate("witness.test/w2")

    async def cosigned(checkpoint: SignedCheckpoint) -> str:
        body, _ = parse_note(checkpoint.note)
        lines = [signature_line(w.cosign(body, 1_800_000_000)) for w in (w1, w2)]
        return checkpoint.note + "".join(lines)

    url = f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"
    async with migrated_ledger(url, home=tmp_path / "home") as ledger:
        service = DecisionService(ledger)
        await populate(service, rounds=1)
        first = tmp_path / "first.zip"
        await create_bundle(ledger, first, tenant="acme", cosigned=cosigned)
        await populate(service, rounds=1)
        second = tmp_path / "second.zip"
        await create_bundle(ledger, second, tenant="acme", cosigned=cosigned)
    return first, second, w1, w2


def _problems(bundle: Path, *witnesses: CosignerKey, quorum: int | None = None) -> list[str]:
    keys = [str(w.verifier()) for w in witnesses]
    return verify_bundle(bundle, witness_keys=keys, quorum=quorum).problems


def test_a_quorum_of_valid_cosignatures_verifies(
    cosigned_bundles: tuple[Path, Path, CosignerKey, CosignerKey],
) -> None:
    first, second, w1, w2 = cosigned_bundles
    for bundle in (first, second):
        assert _problems(bundle, w1, w2) == []
        assert _problems(bundle, w1, w2, quorum=1) == []
    result = verify_bundle(first, witness_keys=[str(w1.verifier())])
    assert result.to_json()["witnesses"][0]["status"] == "valid"


def test_one_cosignature_below_the_quorum_fails(
    cosigned_bundles: tuple[Path, Path, CosignerKey, CosignerKey], tmp_path: Path
) -> None:
    first, _, w1, w2 = cosigned_bundles
    dropped = _edit_checkpoint(
        first, tmp_path / "dropped.zip", lambda note: note.replace(_line_of(note, w2.name), "")
    )
    assert _problems(dropped, w1, w2, quorum=1) == []
    (problem,) = _problems(dropped, w1, w2)
    assert problem == (
        "checkpoint.txt: 1 valid witness cosignature(s), the quorum is 2 (none by witness.test/w2)"
    )


def test_a_forged_cosignature_fails(
    cosigned_bundles: tuple[Path, Path, CosignerKey, CosignerKey], tmp_path: Path
) -> None:
    first, _, w1, w2 = cosigned_bundles
    impostor = CosignerKey.generate(w1.name)

    def forge(note: str) -> str:
        body, _ = parse_note(note)
        made = impostor.cosign(body, 1_800_000_000)
        # The impostor's signature under w1's name and key ID.
        line = signature_line(NoteSignature(w1.name, w1.key_id, made.signature))
        return note.replace(_line_of(note, w1.name), line)

    forged = _edit_checkpoint(first, tmp_path / "forged.zip", forge)
    problems = _problems(forged, w1, w2, quorum=1)
    assert problems == [
        f"checkpoint.txt: the cosignature by witness {w1.name}+{w1.key_id:08x} does not "
        "verify over this checkpoint"
    ]


def test_a_cosignature_reused_for_another_checkpoint_fails(
    cosigned_bundles: tuple[Path, Path, CosignerKey, CosignerKey], tmp_path: Path
) -> None:
    first, second, w1, _ = cosigned_bundles
    with zipfile.ZipFile(first) as archive:
        old_line = _line_of(archive.read("checkpoint.txt").decode(), w1.name)
    reused = _edit_checkpoint(
        second,
        tmp_path / "reused.zip",
        lambda note: note.replace(_line_of(note, w1.name), old_line),
    )
    problems = _problems(reused, w1)
    assert problems[0].endswith("does not verify over this checkpoint")
    assert problems[1] == "checkpoint.txt: 0 valid witness cosignature(s), the quorum is 1"


def test_bad_witness_options_are_refused(
    cosigned_bundles: tuple[Path, Path, CosignerKey, CosignerKey],
) -> None:
    first, _, w1, _ = cosigned_bundles
    with pytest.raises(ReportsError, match="--quorum 2: expected 1 to 1"):
        verify_bundle(first, witness_keys=[str(w1.verifier())], quorum=2)
    with pytest.raises(ReportsError, match="--quorum needs at least one --witness-key"):
        verify_bundle(first, quorum=1)
    code, output = _verify(first, "--witness-key", "not-a-key")
    assert code == 2
    assert "--witness-key" in output
