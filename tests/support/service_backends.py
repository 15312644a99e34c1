"""Services under test run on both real backends: a SQLite file and a private PostgreSQL schema.

The `backend` fixture is shared by the decision record, replay and reports suites (each
conftest re-exports it), so the three always test against the same two databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger
from router.services.decisions import DecisionService
from unhardcoded.db import migrated_ledger


@dataclass(frozen=True)
class Backend:
    """Where a test's ledger lives."""

    name: str
    url: str
    search_path: str | None
    home: Path

    @asynccontextmanager
    async def service(self, **options: Any) -> AsyncIterator[DecisionService]:
        """A `DecisionService` on its own ledger connection (like another process would have)."""
        async with self.ledger() as led:
            yield DecisionService(led, **options)

    @asynccontextmanager
    async def ledger(self) -> AsyncIterator[Ledger]:
        """The ledger on this backend."""
        async with migrated_ledger(self.url, home=self.home, search_path=self.search_path) as led:
            yield led


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A fresh SQLite file, or a fresh PostgreSQL schema (see tests/conftest.py)."""
    home = tmp_path / "home"
    if request.param == "sqlite":
        return Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path}/ledger.db", None, home)
    schema = request.getfixturevalue("pg_schema")
    return Backend("postgres", schema.url, schema.schema, home)
