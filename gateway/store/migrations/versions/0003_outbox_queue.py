"""outbox: an index that hands out queued emails oldest first (status, pk); joins both 0002 heads.
SQLite: datetimes that earlier versions wrote as "... +00:00" get the one text format, so that
comparisons in SQL (due times) are exact.

Revision ID: 0003_outbox_queue
Revises: 0002_inbound, 0002_messenger
"""

from __future__ import annotations

from alembic import op

revision = "0003_outbox_queue"
down_revision = ("0002_inbound", "0002_messenger")
branch_labels = None
depends_on = None


#: The timezone-aware datetime columns (stored as UTC text on SQLite) as of this revision.
_DATETIMES = {
    "events": ["received_at"],
    "suppressions": ["created_at"],
    "tickets": ["created_at", "last_activity_at"],
    "inbound_messages": ["received_at", "processed_at", "released_at"],
    "outbox": ["created_at", "updated_at", "next_attempt_at"],
    "entries": ["created_at", "due_at", "seen_at", "claimed_at"],
    "changes": ["created_at"],
    "webhook_deliveries": ["created_at", "updated_at", "next_attempt_at"],
}


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_status_pk", ["status", "pk"], unique=False)
    if op.get_bind().dialect.name == "sqlite":
        for table, columns in _DATETIMES.items():
            for column in columns:
                op.execute(
                    f"UPDATE {table} SET {column} = substr({column}, 1, length({column}) - 6)"
                    f" || CASE WHEN instr({column}, '.') > 0 THEN '' ELSE '.000000' END"
                    f" WHERE {column} LIKE '%+00:00'"
                )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_status_pk")
