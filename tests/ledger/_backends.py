"""The two real backends the ledger contract runs against, and raw SQL access for tampering."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from ledger import Ledger, NewEvent, open_store
from unhardcoded.db import migrated_ledger

REPO = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).resolve().parent / "_appender.py"

IMMUTABLE = ("ledger_events", "ledger_merkle_nodes", "ledger_checkpoints", "ledger_meta")


@dataclass(frozen=True)
class Backend:
    """Where a test's ledger lives: a SQLite file, or a private PostgreSQL schema."""

    name: str
    url: str
    search_path: str | None
    home: Path

    @asynccontextmanager
    async def open(self, **options: Any) -> AsyncIterator[Ledger]:
        """The ledger on this backend (migrated on first open)."""
        async with migrated_ledger(
            self.url, home=self.home, search_path=self.search_path, **options
        ) as led:
            yield led

    async def sql(self, statement: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Run raw SQL in its own committed transaction (errors come back translated)."""
        store = open_store(self.url, search_path=self.search_path)
        try:
            async with store.write() as conn:
                result = await conn.execute(text(statement), dict(params or {}))
                return list(result.all()) if result.returns_rows else []
        finally:
            await store.dispose()

    async def drop_guards(self) -> None:
        """Remove the immutability triggers by hand (what an attacker with DDL rights does)."""
        for table in IMMUTABLE:
            if self.name == "sqlite":
                await self.sql(f"DROP TRIGGER {table}_refuse_update")
                await self.sql(f"DROP TRIGGER {table}_refuse_delete")
            else:
                await self.sql(f"DROP TRIGGER {table}_refuse_change ON {table}")
                await self.sql(f"DROP TRIGGER {table}_refuse_truncate ON {table}")

    def helper_argv(self, *args: str) -> list[str]:
        """Command line of the appender helper process against this backend."""
        return [
            sys.executable,
            str(HELPER),
            "--url",
            self.url,
            "--home",
            str(self.home),
            "--search-path",
            self.search_path or "",
            *args,
        ]


def decision(i: int, stream: str = "fp-1") -> NewEvent:
    """A decision-like event."""
    return NewEvent(
        "DecisionMade",
        stream,
        {"decision": i, "tenant": "acme", "selected": i % 7, "rank": [[i % 5, 3], [2, 1]]},
    )
