"""The delivery loop: a ledger per outbound email, soft-bounce scores, evidence on suppressions,
and webhook calls that announce no thread entry (a complaint, say).

Revision ID: 0006_delivery_loop
Revises: 0005_inbound_swept_at
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_delivery_loop"
down_revision = "0005_inbound_swept_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_events",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("outbox_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.String(16), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("inbound_pk", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["outbox_pk"], ["outbox.pk"], name=op.f("fk_delivery_events_outbox_pk_outbox")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_delivery_events")),
    )
    op.create_index("ix_delivery_events_outbox_pk", "delivery_events", ["outbox_pk"])
    op.create_index("ix_delivery_events_inbound_pk", "delivery_events", ["inbound_pk"])
    op.create_table(
        "bounce_scores",
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_bounce_scores")),
    )
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("outbox_pk", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("inbound_pk", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("status_code", sa.String(16), nullable=True))
        batch_op.add_column(sa.Column("diagnostic", sa.Text(), nullable=True))
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column("entry_pk", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column("entry_pk", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        for column in ("diagnostic", "status_code", "inbound_pk", "outbox_pk", "kind"):
            batch_op.drop_column(column)
    op.drop_table("bounce_scores")
    op.drop_index("ix_delivery_events_inbound_pk", "delivery_events")
    op.drop_index("ix_delivery_events_outbox_pk", "delivery_events")
    op.drop_table("delivery_events")
