"""The examples in docs/policy.md really run."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from router.core import Catalog, Policy
from router.services.catalogs import bundled_catalog
from unhardcoded.cli import main

DOC = (Path(__file__).resolve().parents[2] / "docs" / "policy.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.DOTALL)


def test_python_examples_run() -> None:
    for code in blocks("python"):
        exec(compile(code, "docs/policy.md", "exec"), {})


@pytest.mark.parametrize("command", [line for b in blocks("sh") for line in b.splitlines() if line])
def test_cli_examples_run(command: str) -> None:
    args = shlex.split(command)
    assert args[0] == "unhardcoded"
    result = CliRunner().invoke(main, args[1:])
    assert result.exit_code == 0, result.output


def test_shape_example_is_a_valid_policy() -> None:
    (shape,) = [b for b in blocks("json") if '"v": "sigma-pol/v1"' in b]
    Policy.from_json(json.loads(shape), bundled_catalog().schema)


def test_catalog_example_is_a_valid_catalog() -> None:
    (shape,) = [b for b in blocks("json") if '"entries"' in b]
    catalog = Catalog.from_json(json.loads(shape))
    assert catalog.schema["no_log"] == "boolean"
