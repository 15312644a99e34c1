"""The ledger stands on its own at run time: opening and appending loads nothing above it."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unhardcoded.db import upgrade

REPO = Path(__file__).resolve().parents[2]

_CHILD = """
import asyncio, sys
from ledger import NewEvent, open_ledger

async def main(url, home):
    async with open_ledger(url, home=home) as ledger:
        await ledger.append(NewEvent("Probe", "s", {"n": 1}))
        await ledger.sequence()
        assert (await ledger.verify()).problem is None

asyncio.run(main(sys.argv[1], sys.argv[2]))
above = ("router", "reports", "unhardcoded", "migrations", "alembic")
print("\\n".join(sorted(m for m in sys.modules if m.split(".")[0] in above)))
"""


def test_open_ledger_imports_nothing_above_the_ledger(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    asyncio.run(upgrade(url))
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, url, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.split() == []


def test_verify_worker_processes_load_no_database_library() -> None:
    """A worker of `verify(workers=N)` imports `ledger._verifyrun` (and `ledger`) to run its
    ranges: without SQLAlchemy (about a second of CPU) it starts in a tenth of one."""
    probe = "import sys, ledger._verifyrun; print(*sorted(m for m in sys.modules if m in {0}))"
    heavy = {"sqlalchemy", "asyncpg", "aiosqlite", "alembic"}
    child = subprocess.run(
        [sys.executable, "-c", probe.format(heavy)], capture_output=True, text=True, check=True
    )
    assert child.stdout.split() == []


async def test_open_ledger_refuses_a_database_that_was_not_migrated(tmp_path: Path) -> None:
    from ledger import NotMigratedError, open_ledger

    (tmp_path / "empty.db").touch()
    with pytest.raises(NotMigratedError, match="run `unhardcoded db upgrade`"):
        async with open_ledger(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", home=tmp_path):
            pass


_LEDGER_TABLES = re.compile(r"\bledger_(events|merkle_nodes|checkpoints|attachments|meta)\b")


def test_no_package_but_the_ledger_and_the_migrations_names_the_ledgers_tables() -> None:
    """Everyone else reads events through `Ledger.select`/`scan`/`count`, never with SQL of its
    own (import-linter forbids importing `ledger._tables`; this catches SQL written as text)."""
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for package in ("router", "reports", "unhardcoded")
        for path in sorted((REPO / package).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _LEDGER_TABLES.search(line)
    ]
    assert offenders == []
