"""`unhardcoded policy validate|fingerprint` and `unhardcoded rank`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from unhardcoded.cli import main

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "router" / "data" / "policies"


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def test_fingerprint_prints_the_display_form() -> None:
    result = run("policy", "fingerprint", str(POLICIES / "free-tier.json"))
    assert result.exit_code == 0
    assert result.stdout == "839817668-3671957456 (sigma-pol/v1)\n"


def test_fingerprint_json_has_both_forms() -> None:
    result = run("policy", "fingerprint", "--json", str(POLICIES / "vip.json"))
    assert json.loads(result.stdout) == {
        "fingerprint": "894268371-3263701583 (sigma-pol/v1)",
        "digest": "354d73d3c288224fa20d0d883eda6a0c943b0416e24fd4f7eb5a53f47ca802b6",
    }


def test_validate_reads_stdin_and_lists_rules() -> None:
    policy = (POLICIES / "regulated.json").read_text()
    result = run("policy", "validate", "-", stdin=policy)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "valid: 2516752476-3091958844 (sigma-pol/v1)",
        '  dpa.blocked_providers: provider not in ["deepseek", "xai"]',
        "  dpa.no_log: no_log is true",
        '  product.needs_tools: capabilities has "tools"',
    ]
    as_json = json.loads(run("policy", "validate", "--json", "-", stdin=policy).stdout)
    assert as_json["valid"] is True
    assert as_json["normalized"]["rules"][0]["when"] == [
        "not",
        ["in", "provider", ["deepseek", "xai"]],
    ]


def test_invalid_policy_exits_2_with_every_pointer() -> None:
    bad = json.dumps(
        {"v": "sigma-pol/v1", "rules": [["eq", "regoin", "eu"], ["cmp", "price_in", "ge", True]]}
    )
    for command in (
        ["policy", "validate", "-"],
        ["policy", "fingerprint", "-"],
        ["rank", "--policy", "-"],
    ):
        result = run(*command, stdin=bad)
        assert result.exit_code == 2, command
        assert result.stderr.splitlines() == [
            'error: /rules/0/1: unknown attribute "regoin" (did you mean "region"? '
            "expected one of: id, model, provider, region, status); "
            "/rules/1/3: expected a number, found true",
        ]
        assert "Traceback" not in result.output


def test_unreadable_and_malformed_files_exit_2(tmp_path: Path) -> None:
    result = run("policy", "validate", str(tmp_path / "absent.json"))
    assert result.exit_code == 2
    assert "cannot read" in result.stderr
    result = run("policy", "validate", "-", stdin='{"v": NaN}')
    assert result.exit_code == 2
    assert "stdin: invalid JSON: NaN is not a JSON number" in result.stderr


def test_validate_against_another_catalog(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            {
                "name": "tiny",
                "entries": [
                    {
                        "id": "a",
                        "model": "m",
                        "provider": "p",
                        "region": "eu",
                        "price_in": 1,
                        "price_out": 1,
                        "status": "active",
                    }
                ],
            }
        )
    )
    result = run("policy", "validate", "--catalog", str(catalog), str(POLICIES / "regulated.json"))
    assert result.exit_code == 2
    assert 'unknown attribute "no_log"' in result.stderr


def test_rank_prints_a_table_with_the_plan_and_the_removals() -> None:
    result = run("rank", "--policy", str(POLICIES / "enterprise-eu.json"))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "policy   2955917977-959330428 (sigma-pol/v1)"
    assert "  1  google/gemini-3.5-flash@eu      0.000527          selected" in lines
    assert "  2  openai/gpt-5-mini@eu            0.0026            fallback" in lines
    assert (
        '  openai/gpt-5@us: removed by residency.eu (region = "us", needs region = "eu")' in lines
    )
    assert lines[-1].startswith("google/gemini-3.5-flash@eu wins on cost_per_run (asc)")


@pytest.mark.parametrize(
    ("policy", "selected"),
    [
        ("free-tier", "google/gemini-3.5-flash@us"),
        ("vip", "openai/gpt-5@us"),
        ("enterprise-eu", "google/gemini-3.5-flash@eu"),
        ("regulated", "google/gemini-3.5-flash@eu"),
    ],
)
def test_rank_json_has_the_trace_keys(policy: str, selected: str) -> None:
    result = run("rank", "--policy", str(POLICIES / f"{policy}.json"), "--json")
    assert result.exit_code == 0
    trace = json.loads(result.stdout)
    assert {"fingerprint", "catalog_version", "selected", "ranked", "removed", "plan"} <= set(trace)
    assert trace["selected"]["id"] == selected
    assert trace["plan"][0] == selected
    assert len(trace["ranked"]) + len(trace["removed"]) == 20


def test_rank_uses_request_tokens_when_the_policy_has_none() -> None:
    policy = json.dumps({"v": "sigma-pol/v1", "rules": [], "rank": [["asc", "cost_per_run"]]})
    result = run(
        "rank", "--policy", "-", "--json", "--tokens-in", "1000", "--tokens-out", "0", stdin=policy
    )
    assert result.exit_code == 0
    trace = json.loads(result.stdout)
    assert trace["tokens"] == {"in": 1000, "out": 0}
    assert trace["selected"]["id"] == "openai/gpt-5-nano@us"  # cheapest input price
    missing = run("rank", "--policy", "-", stdin=policy)
    assert missing.exit_code == 2
    assert "cost_per_run needs token counts" in missing.stderr
    half = run("rank", "--policy", "-", "--tokens-in", "5", stdin=policy)
    assert half.exit_code == 2
    assert "give both --tokens-in and --tokens-out" in half.stderr


def test_rank_with_no_passing_entry_prints_the_trace_and_exits_3() -> None:
    policy = json.dumps(
        {
            "v": "sigma-pol/v1",
            "rules": [{"id": "mars", "when": ["eq", "region", "mars"]}],
            "tokens": {"in": 1, "out": 1},
        }
    )
    result = run("rank", "--policy", "-", "--json", stdin=policy)
    assert result.exit_code == 3
    trace = json.loads(result.stdout)
    assert trace["selected"] is None
    assert trace["plan"] == []
    assert len(trace["removed"]) == 20
    assert "no catalog entry passes policy" in result.stderr


def test_readme_main_command_runs_as_a_subprocess() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "unhardcoded",
            "rank",
            "--policy",
            "router/data/policies/free-tier.json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first_row = next(line for line in result.stdout.splitlines() if line.startswith("  1  "))
    assert first_row.split() == ["1", "google/gemini-3.5-flash@us", "0.0002625", "selected"]


def test_stdin_feeds_one_input_only() -> None:
    for command in (["rank", "--policy", "-"], ["policy", "validate", "-"]):
        result = run(*command, "--catalog", "-", stdin="{}")
        assert result.exit_code == 2
        assert "stdin ('-') can feed the policy or the catalog, not both" in result.stderr


def test_catalog_from_stdin() -> None:
    catalog = (ROOT / "router" / "data" / "catalog.json").read_text()
    result = run("rank", "--policy", str(POLICIES / "vip.json"), "--catalog", "-", stdin=catalog)
    assert result.exit_code == 0
    assert "openai/gpt-5@us" in result.stdout
