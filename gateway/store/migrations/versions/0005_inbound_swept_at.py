"""inbound_messages.swept_at: when the sweeper last enqueued a message, so a backlog is not flooded.

Revision ID: 0005_inbound_swept_at
Revises: 0004_event_fingerprint
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_inbound_swept_at"
down_revision = "0004_event_fingerprint"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("swept_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_column("swept_at")
