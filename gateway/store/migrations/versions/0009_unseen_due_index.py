"""entries: a partial index of the teammate replies still waiting for their unseen check (unclaimed,
unseen) by due time, so a check finds the due ones without walking every reply ever emailed or seen.

Revision ID: 0009_unseen_due_index
Revises: 0008_reply_parts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_unseen_due_index"
down_revision = "0008_reply_parts"
branch_labels = None
depends_on = None

WAITING = sa.text("kind = 'teammate_reply' AND claimed_at IS NULL AND seen_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_entries_unseen_due", "entries", ["due_at"], postgresql_where=WAITING, sqlite_where=WAITING)


def downgrade() -> None:
    op.drop_index("ix_entries_unseen_due", table_name="entries")
