"""outbox: an index that hands out queued emails oldest first (status, pk); joins both 0002 heads

Revision ID: 0003_outbox_queue
Revises: 0002_inbound, 0002_messenger
"""

from __future__ import annotations

from alembic import op

revision = "0003_outbox_queue"
down_revision = ("0002_inbound", "0002_messenger")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_status_pk", ["status", "pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_pk")
