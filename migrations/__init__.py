"""alembic migrations of the unhardcoded database, shipped in the wheel and run from code
(`ledger.upgrade`, `unhardcoded db upgrade`): no alembic.ini is needed at runtime."""

from __future__ import annotations

from pathlib import Path

SCRIPT_LOCATION = str(Path(__file__).resolve().parent)
"""The folder alembic reads `env.py` and `versions/` from."""

__all__ = ["SCRIPT_LOCATION"]
