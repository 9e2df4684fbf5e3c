"""An outage or recovery notice posted and not yet confirmed, so that a crash between the
two does not tell the channel twice.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("pending_notice", sa.Text(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN, never a batch copy (see 0004's downgrade).
    op.execute("ALTER TABLE subscriptions DROP COLUMN pending_notice")
