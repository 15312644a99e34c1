"""The decision projection's `sequence`: a decision's version in its tenant's sequence
`decisions/<tenant>` (docs/bundles.md, "Completeness"), so a tenant's page of `GET /x/decisions`
names its decisions' sequence numbers. Filled from the ledger for the decisions projected
already; null for those recorded by release 0.1.0 (in their policy's stream, without a
sequence).

Revision ID: 0006_decision_sequence
Revises: 0005_idempotency
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_decision_sequence"
down_revision: str | None = "0005_idempotency"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("decision_index", sa.Column("sequence", sa.BigInteger(), nullable=True))
    # The projection is derived data: the ledger's own version of each projected decision, when
    # the decision is in its tenant's sequence (the same SQL on SQLite and PostgreSQL).
    op.execute(
        "UPDATE decision_index SET sequence = (SELECT e.stream_version FROM ledger_events e "
        "WHERE e.position = decision_index.position "
        "AND e.stream_id = 'decisions/' || decision_index.tenant)"
    )


def downgrade() -> None:
    with op.batch_alter_table("decision_index") as batch:
        batch.drop_column("sequence")
