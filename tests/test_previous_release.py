"""A ledger written by the previous release keeps working after `db upgrade`.

`tests/data/release-0.1.0-e100123/` was made by `unhardcoded demo --requests 24` at commit e100123
(version 0.1.0, before the ledger's modules were reorganized): its SQLite database, the signing
key it used (a test fixture, nothing else signs with it), the public key, the second catalog the
demo published and the audit bundle of tenant `regulated`. Every check here runs today's code on
a copy of those files, as an operator upgrading in place would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from unhardcoded.cli import main

RELEASE = Path(__file__).parent / "data" / "release-0.1.0-e100123"


@pytest.fixture
def old(tmp_path: Path) -> Path:
    """A private copy of the previous release's files (the database is modified by the upgrade)."""
    folder = tmp_path / "old"
    shutil.copytree(RELEASE, folder)
    # git keeps no permission bits: restore what the release created, a private home and key.
    (folder / "home").chmod(0o700)
    (folder / "home" / "ledger-signing.key").chmod(0o600)
    return folder


def _cli(folder: Path, *args: str, db: bool = True) -> tuple[int, str, str]:
    url = f"sqlite+aiosqlite:///{folder / 'unhardcoded.db'}"
    argv = [*args, "--db", url] if db else list(args)
    result = CliRunner().invoke(main, argv, env={"UNHARDCODED_HOME": str(folder / "home")})
    return result.exit_code, result.stdout, result.stderr


def test_upgrade_then_verify_and_replay_with_no_mismatch(old: Path) -> None:
    code, out, err = _cli(old, "db", "upgrade")
    assert code == 0, err

    code, out, err = _cli(
        old, "ledger", "verify", "--trust-key", (old / "ledger.pub").read_text().strip()
    )
    assert code == 0, out + err
    assert "intact" in out

    code, out, err = _cli(old, "replay", "--mode", "original", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert report["decisions"] == 24
    assert report["mismatches"] == 0

    code, out, err = _cli(old, "replay", "--against", str(old / "catalog-v2.json"), "--json")
    assert code == 0, out + err
    assert json.loads(out)["decisions"] == 24


def test_old_bundle_still_verifies(old: Path) -> None:
    key = (old / "ledger.pub").read_text().strip()
    code, out, err = _cli(
        old, "bundle", "verify", str(old / "regulated.zip"), "--key", key, db=False
    )
    assert code == 0, out + err
    assert "ok: 6 decisions" in out
    # The report's layout changed since: it is named, not rebuilt; the data stays proven.
    assert (
        "note: report.json and report.html have the layout 'unhardcoded.compliance-report/1'" in out
    )
    assert "note: data/explanations: not in this bundle" in out
    assert "note: completeness is not proven: the bundle carries no completeness proof" in out


def test_upgraded_ledger_takes_new_events_and_still_verifies(old: Path) -> None:
    code, _, err = _cli(old, "db", "upgrade")
    assert code == 0, err
    policy = Path(__file__).parent.parent / "router" / "data" / "policies" / "vip.json"
    code, out, err = _cli(old, "rank", "--policy", str(policy), "--record", "--tenant", "acme")
    assert code == 0, out + err
    code, out, err = _cli(old, "ledger", "checkpoint")
    assert code == 0, out + err
    code, out, err = _cli(
        old, "ledger", "verify", "--trust-key", (old / "ledger.pub").read_text().strip()
    )
    assert code == 0, out + err
    code, out, err = _cli(old, "replay", "--mode", "original", "--json")
    assert code == 0, out + err
    report = json.loads(out)
    assert (report["decisions"], report["mismatches"]) == (25, 0)


def test_a_bundle_over_an_upgraded_ledger_proves_the_sequenced_decisions(old: Path) -> None:
    """The 0.1.0 decisions have no sequence: a new bundle holds and proves each of them, proves
    completeness from the tenant's first sequenced event on, and says what it does not cover."""
    code, _, err = _cli(old, "db", "upgrade")
    assert code == 0, err
    policy = Path(__file__).parent.parent / "router" / "data" / "policies" / "vip.json"
    code, out, err = _cli(old, "rank", "--policy", str(policy), "--record", "--tenant", "regulated")
    assert code == 0, out + err
    bundle = old / "new.zip"
    code, out, err = _cli(old, "bundle", "create", "--tenant", "regulated", str(bundle))
    assert code == 0, out + err
    key = (old / "ledger.pub").read_text().strip()
    code, out, err = _cli(old, "bundle", "verify", str(bundle), "--key", key, db=False)
    assert code == 0, out + err
    assert "ok: 7 decisions" in out
    assert "ok: complete: every decision of decisions/regulated" in out
    assert "(versions 1..2, boundaries included)" in out
    assert "note: 6 decisions were recorded without a sequence (release 0.1.0)" in out
    assert "could only be unsequenced ones of release 0.1.0" in out
