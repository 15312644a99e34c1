"""The decision record's projection: queryable decision and catalog-version indexes beside the
ledger. Not hashed, not immutable: rebuildable from the ledger's events at any time
(`router.services.decisions`, docs/decisions.md).

Revision ID: 0002_decisions
Revises: 0001_ledger
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_decisions"
down_revision: str | None = "0001_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "decision_index",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("decision_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=500), nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger(), nullable=False),
        sa.Column("preview", sa.Boolean(), nullable=False),
        sa.Column("selected", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("position", name="pk_decision_index"),
        sa.UniqueConstraint("decision_id", name="uq_decision_index_decision_id"),
    )
    op.create_index("ix_decision_index_tenant_position", "decision_index", ["tenant", "position"])
    op.create_index(
        "ix_decision_index_fingerprint_position", "decision_index", ["fingerprint", "position"]
    )
    op.create_index("ix_decision_index_recorded_at_us", "decision_index", ["recorded_at_us"])
    op.create_table(
        "catalog_index",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("recorded_at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_catalog_index"),
        sa.UniqueConstraint("position", name="uq_catalog_index_position"),
    )
    op.create_table(
        "decision_projection_state",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_decision_projection_state"),
    )


def downgrade() -> None:
    op.drop_table("decision_projection_state")
    op.drop_table("catalog_index")
    op.drop_index("ix_decision_index_recorded_at_us", table_name="decision_index")
    op.drop_index("ix_decision_index_fingerprint_position", table_name="decision_index")
    op.drop_index("ix_decision_index_tenant_position", table_name="decision_index")
    op.drop_table("decision_index")
