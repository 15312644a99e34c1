"""The gateway's tables (migrations `0003_gateway_keys`, `0005_idempotency`): table definitions
only, so that the migrations import them without the services."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["api_keys", "idempotency_keys", "key_metadata"]

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

idempotency_keys = sa.Table(
    "gateway_idempotency_keys",
    key_metadata,
    # The tenant of the authenticated key, and the SHA-256 of the Idempotency-Key header: the
    # key itself is never stored (it may be something the caller considers private).
    sa.Column("tenant", sa.String(128), primary_key=True),
    sa.Column("key_sha256", sa.LargeBinary(32), primary_key=True),
    # Who holds the claim: a random id, so that a finish after a takeover changes nothing.
    sa.Column("claim_id", sa.String(32), nullable=False),
    sa.Column("request_sha256", sa.LargeBinary(32), nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("decision_id", sa.String(36), nullable=True),
    sa.Column("status", sa.Integer(), nullable=True),
    sa.Column("headers", sa.Text(), nullable=True),
    sa.Column("body", sa.LargeBinary(), nullable=True),
    sa.Column("claimed_at_us", sa.BigInteger(), nullable=False),
    sa.Column("expires_at_us", sa.BigInteger(), nullable=False),
    sa.Index("ix_gateway_idempotency_keys_expires", "expires_at_us"),
)
