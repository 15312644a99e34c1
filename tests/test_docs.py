"""The docs are executable and checked against the code, so they never drift.

- `docs/cli.md` must equal what the CLI renders (`python -m unhardcoded.cli._reference --write`).
- Every command's help ends in a runnable example that names the command itself.
- Every ```sh and ```python block of docs/*.md runs and exits 0: the blocks of one file run in
  order, in one scratch folder (that links the repository's top-level folders), with a fresh
  `UNHARDCODED_HOME` and SQLite database, and `unhardcoded` meaning this source tree. A block
  preceded by `<!-- no-run -->` (or a `<!-- readme:… -->` marker: CI runs those) is not run.
- README.md runs as a newcomer pastes it into one terminal after its install step: its blocks in
  one shell, in order, each from the folder the previous one left, with nothing on PATH but what
  that install made (`.venv/bin/`, reached by activating the environment) and no database
  settings.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest

from reports import SCHEMAS
from unhardcoded.cli._reference import REFERENCE_PATH, render, walk_commands

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOC_FILES = sorted((REPO / "docs").glob("*.md"))
_FENCE = re.compile(r"(?P<marker><!--[^>]*-->\s*\n)?```(?P<lang>sh|python)\n(?P<body>.*?)```", re.S)
BLOCK_TIMEOUT_S = 300


def test_dataset_reference_is_up_to_date() -> None:
    from reports import _reference

    current = _reference.REFERENCE_PATH.read_text(encoding="utf-8")
    assert _reference.render(current) == current, (
        "docs/reports.md is stale: run python -m reports._reference --write"
    )
    for name, schema in SCHEMAS.items():
        for column in schema.names:
            assert f"| `{column}` |" in current.split(f"### `{name}`", 1)[1], (name, column)


def test_cli_reference_is_up_to_date() -> None:
    assert REFERENCE_PATH.read_text(encoding="utf-8") == render(), (
        "docs/cli.md is stale: run python -m unhardcoded.cli._reference --write"
    )


@pytest.mark.parametrize(
    ("path", "command", "ctx"),
    [pytest.param(*item, id=" ".join(item[0])) for item in walk_commands()],
)
def test_every_command_has_a_runnable_example(
    path: tuple[str, ...], command: click.Command, ctx: click.Context
) -> None:
    help_text = command.get_help(ctx)
    assert "Example" in help_text, f"{' '.join(path)} --help has no Example block"
    example_lines = help_text.split("Example", 1)[1].splitlines()
    assert any(line.strip().startswith(" ".join(path)) for line in example_lines), (
        f"the example of {' '.join(path)} does not run {' '.join(path)}"
    )


def _runnable_blocks(doc: Path) -> list[tuple[str, str, int]]:
    text = doc.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        marker = match.group("marker") or ""
        if "no-run" in marker or "readme:" in marker:
            continue
        line = text.count("\n", 0, match.start("body")) + 1
        blocks.append((match.group("lang"), match.group("body"), line))
    return blocks


def _shim(folder: Path) -> None:
    """`folder/unhardcoded`: this source tree's command line."""
    folder.mkdir(parents=True)
    shim = folder / "unhardcoded"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m unhardcoded "$@"\n', encoding="utf-8")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)


def _linked_checkout(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    for entry in REPO.iterdir():
        if not entry.name.startswith(".") and entry.name not in {"unhardcoded.db"}:
            (work / entry.name).symlink_to(entry)
    return work


def _scratch_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    work = _linked_checkout(tmp_path)
    shim_dir = tmp_path / "bin"
    _shim(shim_dir)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(shim_dir), os.environ["PATH"]]),
        "PYTHONPATH": str(REPO),
        "UNHARDCODED_HOME": str(tmp_path / "home"),
        "UNHARDCODED_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'docs.db'}",
    }
    return work, env


_BLOCK_DONE = "::readme-block-done::"


def test_readme_runs_as_a_newcomer_pastes_it(tmp_path: Path) -> None:
    """The README's blocks in one shell, in order, after its install step (`.venv` with the
    `unhardcoded` command, not on PATH until activated), with no `UNHARDCODED_` settings but a
    private home."""
    blocks = _runnable_blocks(README)
    assert blocks
    assert all(lang == "sh" for lang, _, _ in blocks)
    work = _linked_checkout(tmp_path)
    venv = work / ".venv"
    _shim(venv / "bin")
    (venv / "bin" / "activate").write_text(
        f'VIRTUAL_ENV="{venv}"\nexport VIRTUAL_ENV\nPATH="$VIRTUAL_ENV/bin:$PATH"\nexport PATH\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNHARDCODED_")}
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not (Path(p) / "unhardcoded").exists()
    )
    env["PYTHONPATH"] = str(REPO)
    env["UNHARDCODED_HOME"] = str(tmp_path / "home")
    script = "".join(f"{body}echo '{_BLOCK_DONE}{i}'\n" for i, (_, body, _) in enumerate(blocks))
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S * len(blocks),
    )
    done = result.stdout.count(_BLOCK_DONE)
    if result.returncode != 0:
        _, body, line = blocks[done]
        raise AssertionError(
            f"README.md:{line}: the block exited {result.returncode} (after {done} blocks ran)\n"
            f"--- block ---\n{body}--- stdout ---\n{result.stdout[-3000:]}"
            f"--- stderr ---\n{result.stderr[-3000:]}"
        )
    assert done == len(blocks)


@pytest.mark.parametrize(
    "doc",
    [doc for doc in DOC_FILES if _runnable_blocks(doc)],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_code_blocks_run(doc: Path, tmp_path: Path) -> None:
    blocks = _runnable_blocks(doc)
    work, env = _scratch_folder(tmp_path)
    for lang, body, line in blocks:
        shell = ["bash", "-euo", "pipefail", "-c", body]
        argv = shell if lang == "sh" else [sys.executable, "-c", body]
        result = subprocess.run(
            argv, cwd=work, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S
        )
        assert result.returncode == 0, (
            f"{doc.relative_to(REPO)}:{line}: {lang} block exited {result.returncode}\n"
            f"--- block ---\n{body}--- stdout ---\n{result.stdout[-3000:]}"
            f"--- stderr ---\n{result.stderr[-3000:]}"
        )


def test_http_reference_is_up_to_date() -> None:
    from unhardcoded.app._reference import HTTP_REFERENCE_PATH, render_http_reference

    assert HTTP_REFERENCE_PATH.read_text(encoding="utf-8") == render_http_reference(), (
        "docs/http.md is stale: run python -m unhardcoded.app._reference --write"
    )


def test_http_reference_names_every_route() -> None:
    from unhardcoded.app._reference import HTTP_REFERENCE_PATH, openapi_schema

    text = HTTP_REFERENCE_PATH.read_text(encoding="utf-8")
    for path, methods in openapi_schema()["paths"].items():
        for method in methods:
            assert f"## `{method.upper()} {path}`" in text


def _policy_doc_section(title: str) -> str:
    text = (REPO / "docs" / "policy.md").read_text(encoding="utf-8")
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_policy_reference_names_every_operator_the_validator_knows() -> None:
    # The validator's own operator table (private: the docs test checks it against the page).
    from router.core import CMP_OPS
    from router.core._parse import OPERATORS

    section = _policy_doc_section("Operators")
    for operator in OPERATORS:
        assert f'["{operator}"' in section, f"docs/policy.md does not document {operator!r}"
    comparison = next(line for line in section.splitlines() if '["cmp"' in line)
    for op in CMP_OPS:
        assert re.search(rf"\b{op}\b", comparison), f"docs/policy.md: cmp op {op!r} is missing"


def test_policy_reference_states_every_limit_with_its_value() -> None:
    import router.core

    section = _policy_doc_section("Limits")
    rows = {
        line.split("|")[3].strip().strip("`"): line.split("|")[2].strip()
        for line in section.splitlines()
        if line.startswith("|") and "`MAX_" in line
    }
    constants = {n: getattr(router.core, n) for n in router.core.__all__ if n.startswith("MAX_")}
    assert set(rows) == set(constants), "docs/policy.md Limits table and router.core disagree"
    for name, value in constants.items():
        assert f"{value:,}" in rows[name], f"docs/policy.md says {rows[name]!r} for {name}"


def test_policy_reference_names_every_error_and_attribute_type() -> None:
    import router.core

    text = (REPO / "docs" / "policy.md").read_text(encoding="utf-8")
    for name in ("PolicyError", "MissingTokensError", "NoEntryPasses", "CatalogError"):
        assert issubclass(getattr(router.core, name), router.core.RouterError)
        assert name in text, f"docs/policy.md does not name {name}"
    for kind in router.core.ATTRIBUTE_TYPES:
        assert f"`{kind}`" in text, f"docs/policy.md does not name attribute type {kind!r}"
