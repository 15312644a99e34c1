"""Gateway API keys: tenant, scopes and the SHA-256 of the secret (never the secret).

Revision ID: 0003_gateway_keys
Revises: 0002_decisions
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_gateway_keys"
down_revision: str | None = "0002_decisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_api_keys",
        sa.Column("key_id", sa.String(length=12), nullable=False),
        sa.Column("tenant", sa.String(length=128), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("secret_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at_us", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_gateway_api_keys"),
    )
    op.create_index("ix_gateway_api_keys_tenant", "gateway_api_keys", ["tenant"])


def downgrade() -> None:
    op.drop_index("ix_gateway_api_keys_tenant", table_name="gateway_api_keys")
    op.drop_table("gateway_api_keys")
