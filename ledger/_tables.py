"""The ledger's tables (floor 2). alembic's migrations are generated from, and checked against,
this metadata; the immutability guards live in the migrations (they are DDL SQLAlchemy does not
model)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "attachments",
    "checkpoints",
    "events",
    "merkle_nodes",
    "meta",
    "metadata",
]

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

events = Table(
    "ledger_events",
    metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", LargeBinary(16), nullable=False, unique=True),
    Column("type", String(200), nullable=False),
    Column("stream_id", String(500), nullable=False),
    Column("stream_version", BigInteger, nullable=False),
    Column("recorded_at_us", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("payload_digest", LargeBinary(32), nullable=False),
    Column("attachments", LargeBinary, nullable=False),
    Column("prev_hash", LargeBinary(32), nullable=False),
    Column("chain_hash", LargeBinary(32), nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    UniqueConstraint("stream_id", "stream_version"),
)
"""One row per event, insert-only. `attachments` holds the encoded digest list (may be empty)."""

merkle_nodes = Table(
    "ledger_merkle_nodes",
    metadata,
    Column("level", Integer, nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    PrimaryKeyConstraint("level", "idx"),
)
"""The hash of every complete perfect subtree of level >= 1 (level 0: the events' leaf_hash)."""

checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("signed_at_us", BigInteger, nullable=False),
    Column("verifier_key", Text, nullable=False),
    Column("note", Text, nullable=False),
)
"""Every signed checkpoint, insert-only; the latest one is the one with the largest tree size."""

meta = Table(
    "ledger_meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)
"""Ledger-wide constants written once by the first migration (the ledger id)."""

attachments = Table(
    "ledger_attachments",
    metadata,
    Column("position", BigInteger, nullable=False),
    Column("name", String(500), nullable=False),
    Column("digest", LargeBinary(32), nullable=False),
    Column("content", LargeBinary, nullable=True),
    Column("erased_at_us", BigInteger, nullable=True),
    PrimaryKeyConstraint("position", "name"),
)
"""Erasable attachment bytes. NOT immutable: erasure sets `content` to NULL and keeps the row
(tombstone with `erased_at_us`); only `digest` is bound into the hashed envelope."""
