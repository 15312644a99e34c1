"""The command line forgives what people type and turns every bad input into one `error:` line
with a non-zero exit code — never a traceback, never a false "TAMPERED"; `--json` prints errors
as JSON too; what it writes is private to the user."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from unhardcoded.cli import main

REPO = Path(__file__).resolve().parents[1]
POLICY = str(REPO / "router" / "data" / "policies" / "vip.json")


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A CLI runner in an empty folder with its own home and no database settings."""
    for name in list(os.environ):
        if name.startswith("UNHARDCODED_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("UNHARDCODED_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def _one_error_line(result: Result) -> str:
    assert result.exit_code not in (0, None), result.output
    assert not isinstance(result.exception, Exception | None) or isinstance(
        result.exception, SystemExit
    ), result.exception
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    others = [line for line in result.stderr.splitlines() if not line.startswith("error: ")]
    assert all(line.startswith("note: ") for line in others), result.stderr
    return errors[0]


def _deep(path: Path) -> str:
    path.write_text("[" * 100_000 + "]" * 100_000)
    return str(path)


def _ledger(runner: CliRunner, tmp_path: Path) -> str:
    db = f"sqlite+aiosqlite:///{tmp_path / 'l.db'}"
    recorded = runner.invoke(main, ["rank", "--policy", POLICY, "--record", "--db", db])
    assert recorded.exit_code == 0, recorded.output
    return db


def test_verify_refuses_a_chunk_out_of_range_instead_of_reporting_tampering(
    runner: CliRunner, tmp_path: Path
) -> None:
    db = _ledger(runner, tmp_path)
    for chunk in ("0", "-5", "x"):
        result = runner.invoke(main, ["ledger", "verify", "--chunk", chunk, "--db", db])
        assert result.exit_code == 2
        assert "--chunk" in _one_error_line(result)
        assert "TAMPERED" not in result.output
    intact = runner.invoke(main, ["ledger", "verify", "--chunk", "1", "--db", db])
    assert intact.exit_code == 0
    assert intact.stdout.startswith("ledger intact")


@pytest.mark.parametrize(
    "command",
    [
        ["policy", "validate", "{deep}"],
        ["policy", "fingerprint", "{deep}"],
        ["rank", "--policy", "{deep}"],
        ["rank", "--policy", POLICY, "--catalog", "{deep}"],
        ["catalog", "publish", "{deep}"],
        ["catalog", "diff", "{deep}", "{deep}"],
    ],
)
def test_a_file_nested_too_deeply_is_one_error_line(
    runner: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    deep = _deep(tmp_path / "deep.json")
    result = runner.invoke(main, [arg.replace("{deep}", deep) for arg in command])
    assert result.exit_code == 2
    assert "nested too deeply" in _one_error_line(result)


def test_positions_beyond_64_bits_and_non_ascii_digits_are_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    db = _ledger(runner, tmp_path)
    for ref in ("9999999999999999999999999", "²", "-1"):
        result = runner.invoke(main, ["ledger", "show", "--db", db, "--", ref])
        assert result.exit_code == 2
        assert "not an event" in _one_error_line(result)
    shown = runner.invoke(main, ["ledger", "show", "0", "--raw", "--db", db])
    assert shown.exit_code == 0


def test_pasted_database_urls_are_read_as_their_async_driver(
    runner: CliRunner, tmp_path: Path
) -> None:
    for given in (f"sqlite:///{tmp_path / 'a.db'}", str(tmp_path / "a.db")):
        args = ["keys", "create", "--tenant", "t", "--scope", "route", "--db", given]
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
        assert result.stderr.startswith("note: read ")
        assert "sqlite+aiosqlite" in result.stderr.splitlines()[0]
    listed = runner.invoke(main, ["keys", "list", "--db", f"sqlite:///{tmp_path / 'a.db'}"])
    assert len(listed.stdout.splitlines()) == 2
    refused = runner.invoke(main, ["keys", "list", "--db", "mysql://u@h/x"])
    assert refused.exit_code == 2
    assert "unsupported database URL scheme 'mysql'" in _one_error_line(refused)


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg2"])
def test_libpq_and_psycopg_urls_reach_postgresql_through_asyncpg(
    runner: CliRunner, scheme: str, pg_database: str
) -> None:
    url = pg_database.replace("postgresql://", f"{scheme}://", 1)
    result = runner.invoke(main, ["db", "upgrade", "--json", "--db", url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["at_head"] is True
    assert "postgresql+asyncpg" in result.stderr


def test_every_since_and_until_reads_the_same_times(runner: CliRunner, tmp_path: Path) -> None:
    db = _ledger(runner, tmp_path)
    forms = ["2020-12-01", "2020-12-01T10:00Z", "2020-12-01T10:00:00+01:00", "2020-12-01 10:00"]
    for since in forms:
        for command in (
            ["ledger", "decisions"],
            ["replay", "--mode", "original", "--no-record"],
            ["export", "parquet", str(tmp_path / f"e{abs(hash(since))}"), "--no-progress"],
        ):
            args = [*command, "--since", since, "--until", "2100-01-01T00:00Z", "--db", db]
            result = runner.invoke(main, args)
            assert result.exit_code == 0, (args, result.output)
    bad = runner.invoke(main, ["ledger", "decisions", "--since", "yesterday", "--db", db])
    assert bad.exit_code == 2
    assert "ISO 8601" in _one_error_line(bad)


def test_quiet_is_a_hidden_alias_of_no_progress(runner: CliRunner, tmp_path: Path) -> None:
    db = _ledger(runner, tmp_path)
    result = runner.invoke(main, ["export", "parquet", str(tmp_path / "q"), "--quiet", "--db", db])
    assert result.exit_code == 0, result.output
    assert "--quiet" not in runner.invoke(main, ["export", "parquet", "--help"]).output


def test_scripted_commands_print_json_and_their_errors_as_json(
    runner: CliRunner, tmp_path: Path
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'j.db'}"
    upgraded = runner.invoke(main, ["db", "upgrade", "--json", "--db", db])
    assert json.loads(upgraded.stdout) == {"database": db, "at_head": True}
    created = runner.invoke(
        main, ["keys", "create", "--tenant", "t", "--scope", "route", "--json", "--db", db]
    )
    key = json.loads(created.stdout)
    assert key["secret"].startswith("uhk_")
    assert key["tenant"] == "t"
    assert runner.invoke(main, ["rank", "--policy", POLICY, "--record", "--db", db]).exit_code == 0
    signed = runner.invoke(main, ["ledger", "checkpoint", "--json", "--db", db])
    checkpoint = json.loads(signed.stdout)
    assert checkpoint["checkpoint"]["tree_size"] >= 1
    verified = json.loads(runner.invoke(main, ["ledger", "verify", "--json", "--db", db]).stdout)
    assert verified["intact"] is True
    assert verified["root"] == checkpoint["checkpoint"]["root"]
    for args in (
        ["rank", "--policy", str(tmp_path / "missing.json"), "--json"],
        ["ledger", "verify", "--json", "--chunk", "0", "--db", db],
        ["keys", "create", "--tenant", "t", "--scope", "nope", "--json", "--db", db],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 2
        error = json.loads(result.stdout)["error"]
        assert error["message"] in _one_error_line(result)


def test_outputs_into_a_folder_that_cannot_be_written_are_refused_before_the_work(
    runner: CliRunner, tmp_path: Path
) -> None:
    if os.geteuid() == 0:
        locked = Path("/sys")  # root writes through permissions, not into sysfs
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
    absent_db = tmp_path / "never-created.db"
    db = f"sqlite+aiosqlite:///{absent_db}"
    for args in (
        ["export", "parquet", str(locked / "out"), "--db", db],
        ["bundle", "create", "--tenant", "t", str(locked / "t.zip"), "--db", db],
        ["report", "compliance", "--tenant", "t", "--out", str(locked / "t.html"), "--db", db],
        ["replay", "--mode", "original", "--parquet", str(locked / "r.parquet"), "--db", db],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 2
        assert f"cannot write {locked}" in _one_error_line(result)
        assert not absent_db.exists()  # refused before the ledger was opened


def test_keys_create_refuses_someone_elses_sqlite_database(
    runner: CliRunner, tmp_path: Path
) -> None:
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    for command in (
        ["keys", "create", "--tenant", "t", "--scope", "route"],
        ["rank", "--policy", POLICY, "--record"],
    ):
        result = runner.invoke(main, [*command, "--db", str(foreign)])
        assert result.exit_code == 2
        assert "is not an unhardcoded database" in _one_error_line(result)
    with sqlite3.connect(foreign) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"customers"}
    added = runner.invoke(main, ["db", "upgrade", "--db", str(foreign)])  # on purpose: allowed
    assert added.exit_code == 0


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_what_the_cli_writes_is_private_by_default(runner: CliRunner, tmp_path: Path) -> None:
    db_file = tmp_path / "p.db"
    db = f"sqlite+aiosqlite:///{db_file}"
    recorded = ["rank", "--policy", POLICY, "--record", "--tenant", "t", "--db", db]
    assert runner.invoke(main, recorded).exit_code == 0
    outputs = [
        ["export", "parquet", str(tmp_path / "export"), "--db", db],
        ["bundle", "create", "--tenant", "t", str(tmp_path / "t.zip"), "--db", db],
        ["report", "compliance", "--tenant", "t", "--out", str(tmp_path / "t.html"), "--db", db],
    ]
    for args in outputs:
        result = runner.invoke(main, args)
        assert result.exit_code == 0, result.output
    assert _mode(db_file) == 0o600
    assert _mode(tmp_path / "home") == 0o700
    assert _mode(tmp_path / "home" / "ledger-signing.key") == 0o600
    assert _mode(tmp_path / "t.zip") == 0o600
    assert _mode(tmp_path / "t.html") == 0o600
    exported = [tmp_path / "export", *(tmp_path / "export").rglob("*")]
    assert {_mode(p) for p in exported if p.is_dir()} == {0o700}
    assert {_mode(p) for p in exported if p.is_file()} == {0o600}


def test_the_umask_setting_opens_files_up_on_purpose(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNHARDCODED_UMASK", "027")
    db_file = tmp_path / "g.db"
    result = runner.invoke(main, ["db", "upgrade", "--db", str(db_file)])
    assert result.exit_code == 0
    assert _mode(db_file) == 0o640
    monkeypatch.setenv("UNHARDCODED_UMASK", "rw-r--r--")
    bad = runner.invoke(main, ["db", "upgrade", "--db", str(db_file)])
    assert bad.exit_code == 2
    assert "UNHARDCODED_UMASK" in _one_error_line(bad)


def test_an_invalid_setting_is_one_error_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNHARDCODED_CHECKPOINT_INTERVAL_S", "-1")
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "UNHARDCODED_CHECKPOINT_INTERVAL_S" in _one_error_line(result)


def test_usage_errors_are_one_line_naming_the_help(runner: CliRunner) -> None:
    for args in (["nope"], ["ledger", "verify", "--nope"], ["rank"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2
        assert "--help" in _one_error_line(result)


def test_a_mistyped_trust_key_is_bad_input_not_a_tampered_ledger(
    runner: CliRunner, tmp_path: Path
) -> None:
    db = _ledger(runner, tmp_path)
    assert runner.invoke(main, ["ledger", "checkpoint", "--db", db]).exit_code == 0
    result = runner.invoke(main, ["ledger", "verify", "--trust-key", "abc", "--db", db])
    assert result.exit_code == 2
    assert "is not a verifier key" in _one_error_line(result)
    assert "TAMPERED" not in result.output
    key = runner.invoke(main, ["ledger", "checkpoint", "--public-key", "--db", db]).stdout
    trusted = runner.invoke(main, ["ledger", "verify", "--trust-key", key.strip(), "--db", db])
    assert trusted.exit_code == 0, trusted.output


def test_a_page_cursor_beyond_64_bits_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    db = _ledger(runner, tmp_path)
    for cursor in ("99999999999999999999999", "²"):
        result = runner.invoke(main, ["ledger", "decisions", "--cursor", cursor, "--db", db])
        assert result.exit_code == 2
        assert "not a decision page cursor" in _one_error_line(result)


def test_an_overlay_nested_too_deeply_is_one_error_line(runner: CliRunner, tmp_path: Path) -> None:
    overlay = tmp_path / "deep.yaml"
    overlay.write_text("[" * 100_000 + "]" * 100_000)
    prices = str(REPO / "tests" / "catalogs" / "data" / "litellm.json")
    args = ["catalog", "import", "litellm", prices, "--overlay", str(overlay)]
    result = runner.invoke(main, args)
    assert result.exit_code == 2
    assert "nested too deeply" in _one_error_line(result)
