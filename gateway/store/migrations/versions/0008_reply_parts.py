"""entries: the parts of a customer's email reply the extractor split off (signature, trimmed history)
and the rule that cut it, so the thread can show them ("show trimmed").

Revision ID: 0008_reply_parts
Revises: 0007_customer_time_zone
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_reply_parts"
down_revision = "0007_customer_time_zone"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("trimmed", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rule", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_column("rule")
        batch_op.drop_column("trimmed")
        batch_op.drop_column("signature")
