"""messenger: the changes log the Messenger's event stream reads

Revision ID: 0002_messenger
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_messenger"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_pk", sa.Integer(), nullable=False),
        sa.Column("ticket_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("entry_pk", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_pk"], ["customers.pk"], name=op.f("fk_changes_customer_pk")),
        sa.ForeignKeyConstraint(["ticket_pk"], ["tickets.pk"], name=op.f("fk_changes_ticket_pk")),
        sa.ForeignKeyConstraint(["entry_pk"], ["entries.pk"], name=op.f("fk_changes_entry_pk")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_changes")),
    )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index("ix_changes_customer_pk_pk", ["customer_pk", "pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_customer_pk_pk")
    op.drop_table("changes")
