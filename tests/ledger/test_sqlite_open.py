"""Opening a SQLite ledger file while another connection holds it: the switch to WAL waits."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from ledger._sqlite import enable_wal


def test_the_switch_to_wal_waits_out_a_lock_sqlite_refuses_at_once(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.3, holder.execute, ["COMMIT"])
    # timeout=0: no busy handler, so SQLite answers "database is locked" at once, as it does
    # where waiting could deadlock.
    opener = sqlite3.connect(path, isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        opener.execute("PRAGMA journal_mode=WAL")
    started = time.monotonic()
    release.start()
    try:
        enable_wal(opener.execute)
    finally:
        release.join()
    assert time.monotonic() - started >= 0.25  # it waited for the lock instead of failing
    assert opener.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    opener.close()
    holder.close()


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    calls: list[str] = []

    def execute(sql: str) -> None:
        calls.append(sql)
        sqlite3.connect(tmp_path)  # a directory: "unable to open database file", not "locked"

    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        enable_wal(execute)
    assert calls == ["PRAGMA journal_mode=WAL"]
