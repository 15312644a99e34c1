"""Witness cosignatures of the ledger's checkpoints, and each witness's latest submission outcome.

Revision ID: 0004_witness_cosignatures
Revises: 0003_gateway_keys
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_witness_cosignatures"
down_revision: str | None = "0003_gateway_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "witness_cosignatures",
        sa.Column("witness_key", sa.String(length=400), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("signature_line", sa.Text(), nullable=False),
        sa.Column("cosigned_at", sa.BigInteger(), nullable=False),
        sa.Column("received_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("witness_key", "tree_size", name="pk_witness_cosignatures"),
    )
    op.create_index(
        "ix_witness_cosignatures_tree_size", "witness_cosignatures", ["tree_size"]
    )
    op.create_table(
        "witness_status",
        sa.Column("witness_key", sa.String(length=400), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("cosigned_size", sa.BigInteger(), nullable=True),
        sa.Column("last_outcome", sa.String(length=40), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at_us", sa.BigInteger(), nullable=True),
        sa.Column("updated_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("witness_key", name="pk_witness_status"),
    )


def downgrade() -> None:
    op.drop_table("witness_status")
    op.drop_index("ix_witness_cosignatures_tree_size", table_name="witness_cosignatures")
    op.drop_table("witness_cosignatures")
