"""Replay runs on both real backends: a SQLite file and a private PostgreSQL schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.decisions.conftest import Backend


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A fresh SQLite file, or a fresh PostgreSQL schema (see tests/conftest.py)."""
    home = tmp_path / "home"
    if request.param == "sqlite":
        return Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path}/ledger.db", None, home)
    schema = request.getfixturevalue("pg_schema")
    return Backend("postgres", schema.url, schema.schema, home)
