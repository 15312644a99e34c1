"""The log side's tables (in the ledger's database; created by migration 0004).

- `witness_cosignatures`: every cosignature a witness answered with, one row per (witness,
  tree size), insert-only: the cosigned checkpoint is the ledger's note plus these lines;
- `witness_status`: per witness, the latest outcome of a submission (for `/metrics`'s
  companion, `ledger verify`), overwritten as submissions go.

Witnesses are named by their vkey, which holds their name, key ID and public key.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["cosignatures", "status", "witness_metadata"]

witness_metadata = sa.MetaData()

cosignatures = sa.Table(
    "witness_cosignatures",
    witness_metadata,
    sa.Column("witness_key", sa.String(400), primary_key=True),
    sa.Column("tree_size", sa.BigInteger(), primary_key=True),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("signature_line", sa.Text(), nullable=False),
    sa.Column("cosigned_at", sa.BigInteger(), nullable=False),
    sa.Column("received_at_us", sa.BigInteger(), nullable=False),
    sa.Index("ix_witness_cosignatures_tree_size", "tree_size"),
)

status = sa.Table(
    "witness_status",
    witness_metadata,
    sa.Column("witness_key", sa.String(400), primary_key=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("cosigned_size", sa.BigInteger(), nullable=True),
    sa.Column("last_outcome", sa.String(40), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("last_error_at_us", sa.BigInteger(), nullable=True),
    sa.Column("updated_at_us", sa.BigInteger(), nullable=False),
)
