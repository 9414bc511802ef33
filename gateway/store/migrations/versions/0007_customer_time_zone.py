"""customers.time_zone: the IANA zone the customer's emails show times in (NULL: unknown, UTC).

Revision ID: 0007_customer_time_zone
Revises: 0006_delivery_loop
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_customer_time_zone"
down_revision = "0006_delivery_loop"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
