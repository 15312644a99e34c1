"""The tables of the decision record's projection (migration `0002_decisions`): table definitions
only, so that the migrations import them without the service."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["catalog_index", "decision_index", "metadata", "projection_state"]

metadata = MetaData()

decision_index = Table(
    "decision_index",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("decision_id", LargeBinary(16), nullable=False, unique=True),
    Column("tenant", String(200), nullable=False),
    Column("fingerprint", String(500), nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
    Column("preview", Boolean, nullable=False),
    Column("selected", Text, nullable=True),
    Column("sequence", BigInteger, nullable=True),
    Index("ix_decision_index_tenant_position", "tenant", "position"),
    Index("ix_decision_index_fingerprint_position", "fingerprint", "position"),
    Index("ix_decision_index_recorded_at_us", "recorded_at_us"),
)
"""One row per `DecisionMade` event; `sequence` (migration `0006_decision_sequence`) is its
version in its tenant's sequence, null for a decision of release 0.1.0 (in none)."""

catalog_index = Table(
    "catalog_index",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("entries", Integer, nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
)
"""One row per `CatalogPublished` event."""

projection_state = Table(
    "decision_projection_state",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)
"""The last ledger position projected (row `decisions`)."""
