"""alembic migrations of the unhardcoded database, shipped in the wheel and run from code
(`ledger.upgrade`, `unhardcoded db upgrade`): no alembic.ini is needed at runtime."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

SCRIPT_LOCATION = str(Path(__file__).resolve().parent)
"""The folder alembic reads `env.py` and `versions/` from."""


def target_metadata() -> list[MetaData]:
    """The table metadata of every package that owns tables, in migration order.

    Imported lazily: the ledger runs migrations, and must not import the services at import time.
    """
    from ledger._tables import metadata as ledger_tables
    from router.services.decisions._projection import metadata as decision_projection
    from router.services.gateway._keys import key_metadata as gateway_keys
    from router.services.witness._tables import witness_metadata

    return [ledger_tables, decision_projection, gateway_keys, witness_metadata]


__all__ = ["SCRIPT_LOCATION", "target_metadata"]
