"""alembic migrations of the unhardcoded database, shipped in the wheel and run from code
(`unhardcoded.db.upgrade`, `unhardcoded db upgrade`): no alembic.ini is needed at runtime.

The migrations know the table modules of the packages that own tables, and nothing else of them.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

from ledger._tables import metadata as ledger_tables
from router.services.decisions._tables import metadata as decision_projection
from router.services.gateway._tables import key_metadata as gateway_keys
from router.services.witness._tables import witness_metadata

SCRIPT_LOCATION = str(Path(__file__).resolve().parent)
"""The folder alembic reads `env.py` and `versions/` from."""


def target_metadata() -> list[MetaData]:
    """The table metadata of every package that owns tables, in migration order."""
    return [ledger_tables, decision_projection, gateway_keys, witness_metadata]


__all__ = ["SCRIPT_LOCATION", "target_metadata"]
