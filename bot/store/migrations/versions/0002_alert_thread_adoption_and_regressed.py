"""Alert threads: the key a thread had before a newer grouping adopted it, and the state
`regressed`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES_BEFORE = "state IN ('open', 'resolved', 'muted')"
_STATES = "state IN ('open', 'resolved', 'muted', 'regressed')"


def upgrade() -> None:
    # Batch mode: SQLite changes a CHECK constraint only by copying the table.
    with op.batch_alter_table("alert_threads", recreate="auto") as batch:
        batch.add_column(sa.Column("previous_fingerprint", sa.Text(), nullable=True))
        batch.drop_constraint(op.f("ck_alert_threads_state"), type_="check")
        batch.create_check_constraint(op.f("ck_alert_threads_state"), _STATES)


def downgrade() -> None:
    op.execute("UPDATE alert_threads SET state = 'open' WHERE state = 'regressed'")
    with op.batch_alter_table("alert_threads", recreate="auto") as batch:
        batch.drop_constraint(op.f("ck_alert_threads_state"), type_="check")
        batch.create_check_constraint(op.f("ck_alert_threads_state"), _STATES_BEFORE)
        batch.drop_column("previous_fingerprint")
