"""On-call workflow: an alert's owner and "resolved in the next version", the version of its
latest occurrence; a subscription's notify list and threshold.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert_threads") as batch:
        batch.add_column(sa.Column("latest_version", sa.Text(), nullable=True))
        batch.add_column(sa.Column("owner", sa.Text(), nullable=True))
        batch.add_column(sa.Column("owner_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resolved_through", sa.Text(), nullable=True))
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("notify", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("min_count", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL), never a batch copy: copying `subscriptions`
    # on SQLite drops the old table, and with foreign keys on that cascades to the reported
    # records, intents and runs of every subscription.
    for table, column in (
        ("subscriptions", "min_count"),
        ("subscriptions", "notify"),
        ("alert_threads", "resolved_through"),
        ("alert_threads", "owner_since"),
        ("alert_threads", "owner"),
        ("alert_threads", "latest_version"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
