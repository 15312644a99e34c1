"""The ledger stands on its own at run time: opening and appending loads nothing above it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from unhardcoded.db import upgrade

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


async def test_open_ledger_refuses_a_database_that_was_not_migrated(tmp_path: Path) -> None:
    from ledger import NotMigratedError, open_ledger

    (tmp_path / "empty.db").touch()
    with pytest.raises(NotMigratedError, match="run `unhardcoded db upgrade`"):
        async with open_ledger(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", home=tmp_path):
            pass
