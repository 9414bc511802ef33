"""events: the fingerprint of each event's body, so a reused event id with another body is refused.

Revision ID: 0004_event_fingerprint
Revises: 0003_outbox_queue
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_event_fingerprint"
down_revision = "0003_outbox_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("fingerprint")
