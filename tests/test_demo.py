"""`unhardcoded demo` end to end: twice, once in a fresh process and once in-process, with httpx
and with the openai package, and the two printed summaries agree line for line (lines marked as
differing per run masked); every artifact exists, the bundle verifies, and every command the demo
prints as a next step runs."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reports import verify_bundle
from unhardcoded._demo import AUDITED_TENANT, TENANTS, run_demo
from unhardcoded.cli import main

REPO = Path(__file__).resolve().parents[1]
REQUESTS = 12  # 3 per tenant, the second of each streamed

ARTIFACTS = [
    "unhardcoded.db",
    "ledger.pub",
    "catalog-v1.json",
    "catalog-v2.json",
    "requests/vip.json",
    "exports/decisions",
    "exports/eliminations",
    "exports/rankings",
    "exports/attempts",
    "exports/catalogs",
    "exports/policies",
    f"reports/{AUDITED_TENANT}.html",
    f"bundles/{AUDITED_TENANT}.zip",
    *(f"policies/{t}.json" for t in TENANTS),
    *(f"keys/{t}.key" for t in TENANTS),
]


def _masked(lines: list[str]) -> list[str]:
    return ["<differs>" if "(differs per" in line else line for line in lines]


def _env(tmp_path: Path) -> dict[str, str]:
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir(exist_ok=True)
    shim = shim_dir / "unhardcoded"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m unhardcoded "$@"\n', encoding="utf-8")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_")}
    env["PATH"] = os.pathsep.join([str(shim_dir), env["PATH"]])
    env["PYTHONPATH"] = str(REPO)
    return env


def test_demo_is_deterministic_complete_and_verifiable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _env(tmp_path)
    first = tmp_path / "first"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "unhardcoded",
            "demo",
            "--dir",
            str(first),
            "--requests",
            "12",
            "--client",
            "httpx",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    printed = process.stdout.splitlines()

    second: list[str] = []
    result = run_demo(tmp_path / "second", REQUESTS, client="openai", echo=second.append)
    assert _masked(printed) == _masked(second)
    assert result.bundle_ok
    assert result.ledger_intact
    assert result.mismatches == 0

    for folder in (first, tmp_path / "second"):
        for name in ARTIFACTS:
            assert (folder / name).exists(), f"{folder / name} is missing"
        key = (folder / "ledger.pub").read_text().strip()
        check = verify_bundle(folder / "bundles" / f"{AUDITED_TENANT}.zip", key=key)
        assert check.ok, check.problems
        assert check.decisions == REQUESTS // len(TENANTS)

    text = "\n".join(printed)
    assert f"sent      {REQUESTS} chat completions ({len(TENANTS)} streamed)" in text
    assert "0 mismatches, every decision proven" in text
    assert "HTTP 400 invalid_policy: /policy/rules/0/when/3" in text

    # Every command printed as a next step runs, from the demo's folder (in-process: the shell's
    # only job in them is `$(cat ledger.pub)`).
    commands = [line.strip() for line in printed if line.startswith("  unhardcoded ")]
    assert len(commands) >= 6
    key = (first / "ledger.pub").read_text().strip()
    monkeypatch.chdir(first)
    for command in commands:
        args = shlex.split(command.replace('"$(cat ledger.pub)"', shlex.quote(key)))
        run = CliRunner().invoke(main, args[1:])
        assert run.exit_code == 0, f"{command}\n{run.output}"
        if args[1:3] == ["bundle", "verify"]:
            assert run.output.startswith("ok: 3 decisions")


def test_demo_refuses_a_folder_in_use(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("mine")
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path), "--requests", "4"])
    assert result.exit_code == 2
    assert "is not an empty folder" in result.output
    assert (tmp_path / "something").read_text() == "mine"


def test_demo_needs_one_request_per_tenant(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path / "d"), "--requests", "3"])
    assert result.exit_code == 2
    assert "--requests" in result.output
    assert not (tmp_path / "d").exists()
