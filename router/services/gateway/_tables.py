"""The gateway's table (migration `0003_gateway_keys`): table definitions only, so that the
migrations import them without the key service."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["api_keys", "key_metadata"]

key_metadata = sa.MetaData()
api_keys = sa.Table(
    "gateway_api_keys",
    key_metadata,
    sa.Column("key_id", sa.String(12), primary_key=True),
    sa.Column("tenant", sa.String(128), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("secret_sha256", sa.LargeBinary(32), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("created_at_us", sa.BigInteger(), nullable=False),
    sa.Column("revoked_at_us", sa.BigInteger(), nullable=True),
    sa.Index("ix_gateway_api_keys_tenant", "tenant"),
)
