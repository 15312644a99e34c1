"""The command line loads only what a command needs: `--help`, `rank` on the bundled catalog and
shell completion never import pandas, pyarrow, FastAPI, SQLAlchemy or the ledger.

Each case runs in a fresh interpreter and asserts on `sys.modules` afterwards, which is
deterministic (the startup times themselves are measured by bench/bench_cli_startup.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from router.services.gateway import SCOPES
from unhardcoded.cli import main
from unhardcoded.cli.keys import SCOPE_CHOICES

REPO = Path(__file__).resolve().parents[1]

# What a command that needs none of it must not pay for.
HEAVY = ("pandas", "pyarrow", "fastapi", "uvicorn", "sqlalchemy", "ledger", "reports", "httpx")

_PROBE = """
import json, sys
from unhardcoded.cli import main
try:
    main(sys.argv[1:], prog_name="unhardcoded")
except SystemExit:
    pass
sys.stdout.flush()
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """Run the CLI with `args` in a fresh interpreter in an empty folder (no ./unhardcoded.db):
    its output, and the top-level packages it imported."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("UNHARDCODED_", "_UNH"))}
    base["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=tmp_path,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    output, _, modules = done.stdout.rpartition("\nMODULES ")
    return output, {name.split(".")[0] for name in json.loads(modules)}


@pytest.mark.parametrize("args", [["--help"], ["rank", "--help"], ["ledger", "--help"]])
def test_help_imports_no_heavy_package(tmp_path: Path, args: list[str]) -> None:
    output, loaded = _run(tmp_path, *args)
    assert "Usage: unhardcoded" in output
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


def test_rank_on_the_bundled_catalog_imports_only_the_policy_core(tmp_path: Path) -> None:
    policy = REPO / "router" / "data" / "policies" / "regulated.json"
    output, loaded = _run(tmp_path, "rank", "--policy", str(policy))
    assert "catalog  illustrative" in output
    assert "wins on" in output
    assert loaded.isdisjoint({*HEAVY, "pydantic", "pydantic_settings"})
    assert not (tmp_path / "unhardcoded.db").exists()


def test_bash_completion_script_and_command_names_import_no_heavy_package(
    tmp_path: Path,
) -> None:
    script, loaded = _run(tmp_path, env={"_UNHARDCODED_COMPLETE": "bash_source"})
    assert "complete -o nosort -F _unhardcoded_completion unhardcoded" in script
    assert loaded.isdisjoint(HEAVY)

    completion = {
        "_UNHARDCODED_COMPLETE": "bash_complete",
        "COMP_WORDS": "unhardcoded ",
        "COMP_CWORD": "1",
    }
    names, loaded = _run(tmp_path, env=completion)
    assert {"plain,rank", "plain,replay", "plain,serve", "plain,ledger"} <= set(names.split())
    assert loaded.isdisjoint(HEAVY)


def test_every_lazy_command_loads_under_its_own_name() -> None:
    ctx = click.Context(main)
    names = main.list_commands(ctx)
    assert len(names) == 13
    for name in names:
        command = main.get_command(ctx, name)
        assert command is not None
        assert command.name == name


def test_unknown_command_is_a_usage_error() -> None:
    outcome = CliRunner().invoke(main, ["nope"])
    assert outcome.exit_code == 2
    assert "No such command 'nope'" in outcome.output


def test_key_scopes_offered_by_the_cli_are_the_gateways() -> None:
    assert SCOPE_CHOICES == SCOPES
