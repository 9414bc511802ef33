"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 12:46:31.790697
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('customers',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('locale', sa.String(length=35), nullable=False),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_customers')),
    sa.UniqueConstraint('external_id', name=op.f('uq_customers_external_id'))
    )
    op.create_table('events',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    op.create_table('kv',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_kv'))
    )
    op.create_table('suppressions',
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('address', name=op.f('pk_suppressions'))
    )
    op.create_table('tickets',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('customer_pk', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('created_by', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_activity_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('root_message_id', sa.String(length=250), nullable=True),
    sa.ForeignKeyConstraint(['customer_pk'], ['customers.pk'], name=op.f('fk_tickets_customer_pk')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_tickets')),
    sa.UniqueConstraint('external_id', name=op.f('uq_tickets_external_id'))
    )
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tickets_customer_pk'), ['customer_pk'], unique=False)

    op.create_table('inbound_messages',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('mail_from', sa.String(length=320), nullable=False),
    sa.Column('rcpt_to', sa.Text(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('ticket_pk', sa.Integer(), nullable=True),
    sa.Column('threaded_by', sa.String(length=24), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['ticket_pk'], ['tickets.pk'], name=op.f('fk_inbound_messages_ticket_pk')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_inbound_messages'))
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_messages_status', ['status'], unique=False)

    op.create_table('outbox',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ticket_pk', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('to_addr', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=500), nullable=False),
    sa.Column('message_id', sa.String(length=250), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_pk'], ['tickets.pk'], name=op.f('fk_outbox_ticket_pk')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_outbox')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outbox_message_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_ticket_pk'), ['ticket_pk'], unique=False)

    op.create_table('entries',
    sa.Column('pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ticket_pk', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=True),
    sa.Column('author_name', sa.String(length=200), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('dedup_key', sa.String(length=250), nullable=True),
    sa.Column('inbound_pk', sa.Integer(), nullable=True),
    sa.Column('state_from', sa.String(length=32), nullable=True),
    sa.Column('state_to', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('emailed_outbox_pk', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['inbound_pk'], ['inbound_messages.pk'], name=op.f('fk_entries_inbound_pk')),
    sa.ForeignKeyConstraint(['ticket_pk'], ['tickets.pk'], name=op.f('fk_entries_ticket_pk')),
    sa.PrimaryKeyConstraint('pk', name=op.f('pk_entries')),
    sa.UniqueConstraint('ticket_pk', 'dedup_key', name='uq_entries_ticket_dedup_key'),
    sa.UniqueConstraint('ticket_pk', 'external_id', name='uq_entries_ticket_external_id')
    )
    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.create_index('ix_entries_due_at', ['due_at'], unique=False)
        batch_op.create_index('ix_entries_ticket_pk_pk', ['ticket_pk', 'pk'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('entries', schema=None) as batch_op:
        batch_op.drop_index('ix_entries_ticket_pk_pk')
        batch_op.drop_index('ix_entries_due_at')

    op.drop_table('entries')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_ticket_pk'))
        batch_op.drop_index('ix_outbox_status_next_attempt_at')

    op.drop_table('outbox')
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_messages_status')

    op.drop_table('inbound_messages')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tickets_customer_pk'))

    op.drop_table('tickets')
    op.drop_table('suppressions')
    op.drop_table('kv')
    op.drop_table('events')
    op.drop_table('customers')

