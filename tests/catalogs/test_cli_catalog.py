"""`unhardcoded catalog import|diff` through the real command line (click's runner and a
subprocess), including the example policies ranking on an imported catalog."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from router.core import Policy, decide
from router.services.catalogs import BUNDLED_POLICIES, bundled_policy_document, load_catalog
from tests.catalogs.support import EXAMPLE_OVERLAY, LITELLM, OPENROUTER, ROOT
from unhardcoded.cli import main


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def test_import_litellm_writes_the_catalog_to_stdout_and_the_summary_to_stderr() -> None:
    result = run("catalog", "import", "litellm", str(LITELLM), "--as-of", "2026-01-01")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert len(document["entries"]) == 16
    assert "imported 16 entries from litellm.json" in result.stderr
    assert "mode embedding (not chat)" in result.stderr
    assert "deprecation cut-off 2026-01-01 (--as-of)" in result.stderr


def test_without_as_of_the_cli_says_it_used_today() -> None:
    result = run("catalog", "import", "litellm", str(LITELLM))
    assert result.exit_code == 0, result.stderr
    assert "(today, UTC; change with --as-of)" in result.stderr


def test_import_with_out_and_overlay_prints_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "catalog.json"
    result = run(
        "catalog", "import", "litellm", str(LITELLM),
        "--overlay", str(EXAMPLE_OVERLAY), "--as-of", "2026-01-01", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    assert "warning: overlay.yaml /rules/" in result.stdout
    catalog = load_catalog(out)
    assert catalog["mistral/mistral-large-latest@eu"].get("bench_intelligence") == 0.72
    assert catalog.version in result.stdout


def test_the_example_policies_rank_on_an_imported_catalog(tmp_path: Path) -> None:
    out = tmp_path / "catalog.json"
    args = ["catalog", "import", "litellm", str(LITELLM), "--overlay", str(EXAMPLE_OVERLAY)]
    assert run(*args, "--as-of", "2026-01-01", "--out", str(out)).exit_code == 0
    catalog = load_catalog(out)
    selected = {}
    for name in BUNDLED_POLICIES:
        trace = decide(Policy.from_json(bundled_policy_document(name), catalog.schema), catalog)
        assert trace.selected is not None, name
        selected[name] = catalog.entries[trace.selected].id
    assert selected == {
        "enterprise-eu": "mistral/mistral-large-latest@eu",
        "free-tier": "mistral/mistral-small-latest@eu",
        "regulated": "mistral/mistral-small-latest@eu",
        "vip": "bedrock/anthropic.claude-sonnet-4-6@global",
    }


def test_import_openrouter_from_stdin() -> None:
    result = run("catalog", "import", "openrouter", "-", stdin=OPENROUTER.read_text())
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)["entries"]) == 11
    assert "imported 11 entries from stdin (openrouter" in result.stderr


def test_bad_input_exits_2_with_file_and_pointer(tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    spec = {"mode": "chat", "litellm_provider": "openai", "input_cost_per_token": -1}
    bad.write_text(json.dumps({"gpt-4o": {**spec, "output_cost_per_token": 0}}))
    result = run("catalog", "import", "litellm", str(bad))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: prices.json: /gpt-4o/input_cost_per_token: expected")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["catalog", "import", "litellm", "missing.json"], "error: missing.json: cannot read"),
        (["catalog", "import", "openrouter", str(LITELLM)], "error: litellm.json: /data: expected"),
        (
            ["catalog", "import", "litellm", str(LITELLM), "--overlay", "none.yaml"],
            "error: none.yaml",
        ),
        (
            ["catalog", "diff", str(LITELLM), str(LITELLM)],
            "error: /name: expected a non-empty string",
        ),
    ],
)
def test_other_bad_inputs_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.startswith(message), result.stderr


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"a": {"mode": "chat",}}')
    result = run("catalog", "import", "litellm", str(bad))
    assert result.exit_code == 2
    assert "broken.json: invalid JSON at line 1" in result.stderr


def test_an_unwritable_out_exits_2(tmp_path: Path) -> None:
    result = run(
        "catalog", "import", "openrouter", str(OPENROUTER), "--out", str(tmp_path / "no" / "x.json")
    )
    assert result.exit_code == 2
    assert "error: cannot write" in result.stderr


def test_diff_prints_a_table_and_json(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    assert (
        run(
            "catalog", "import", "litellm", str(LITELLM), "--as-of", "2025-01-01", "-o", str(old)
        ).exit_code
        == 0
    )
    assert (
        run(
            "catalog", "import", "litellm", str(LITELLM), "--as-of", "2026-01-01", "-o", str(new)
        ).exit_code
        == 0
    )
    table = run("catalog", "diff", str(old), str(new))
    assert table.exit_code == 0
    assert "0 added, 0 removed, 1 changed (1 fields)" in table.stdout
    row = next(line for line in table.stdout.splitlines() if line.startswith("openai/gpt-4-0613"))
    assert row.split() == ["openai/gpt-4-0613@unspecified", "status", '"active"', '"deprecated"']
    as_json = json.loads(run("catalog", "diff", str(old), str(new), "--json").stdout)
    assert as_json["changed"] == {
        "openai/gpt-4-0613@unspecified": {"status": {"old": "active", "new": "deprecated"}}
    }


def test_every_catalog_command_has_an_example() -> None:
    for args in (["catalog"], ["catalog", "import"], ["catalog", "import", "litellm"],
                 ["catalog", "import", "openrouter"], ["catalog", "diff"]):  # fmt: skip
        result = run(*args, "--help")
        assert result.exit_code == 0
        assert "Example:" in result.stdout


def test_the_module_entry_point_runs_the_help_example(tmp_path: Path) -> None:
    out = tmp_path / "or.json"
    completed = subprocess.run(
        [sys.executable, "-m", "unhardcoded", "catalog", "import", "openrouter",
         "tests/catalogs/data/openrouter.json", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert len(load_catalog(out).entries) == 11
