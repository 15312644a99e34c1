"""The one error root of the ledger package. Driver errors (sqlite3, asyncpg, SQLAlchemy) are
translated into these in exactly one place, the store, so callers never see a driver exception."""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error raised by `ledger`."""
