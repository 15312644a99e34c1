"""Idempotency keys of the gateway: per tenant, the SHA-256 of the key (never the key), the
claim's state, its decision and, for a replayable answer, the answer itself, until it expires.

Revision ID: 0005_idempotency
Revises: 0004_witness_cosignatures
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_idempotency"
down_revision: str | None = "0004_witness_cosignatures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_idempotency_keys",
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("key_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("claim_id", sa.String(length=32), nullable=False),
        sa.Column("request_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("claimed_at_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "key_sha256", name="pk_gateway_idempotency_keys"),
    )
    op.create_index(
        "ix_gateway_idempotency_keys_expires", "gateway_idempotency_keys", ["expires_at_us"]
    )


def downgrade() -> None:
    op.drop_index("ix_gateway_idempotency_keys_expires", table_name="gateway_idempotency_keys")
    op.drop_table("gateway_idempotency_keys")
