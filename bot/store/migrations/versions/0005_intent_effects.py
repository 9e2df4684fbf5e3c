"""A post's confirmation records what it made true on its intent's row (`effects`), folded into
the alert threads and the reported records in batches; a settled intent belongs to no
subscription (NULL), so it outlives an unsubscribe until folded.

The previous release keeps working: it never reads `effects`, its inserts leave it out, and it
finds intents by their subscription, so it never sees a settled one. It can see a trace
reply's intent that still carries its alert's effects (between the alert's confirmation and
the reply's, or the next fold): should it take such a subscription over because this
release's process was killed at that moment, it settles the intent its own way and the alert's
thread is not kept, so that alert could be posted again. It takes a kill at that moment during
an upgrade.

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

# SQLite changes a foreign key by copying the table (batch mode).
_FOREIGN_KEY = "fk_post_intents_subscription_id_subscriptions"


def upgrade() -> None:
    with op.batch_alter_table("post_intents") as batch:
        batch.add_column(sa.Column("effects", sa.JSON(), nullable=True))
        batch.alter_column("subscription_id", existing_type=sa.Integer(), nullable=True)
        batch.drop_constraint(_FOREIGN_KEY, type_="foreignkey")
        batch.create_foreign_key(
            _FOREIGN_KEY, "subscriptions", ["subscription_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    # What settled intents made true and no fold carried out is lost with them: at worst an
    # alert of that moment is posted again by the previous release.
    op.execute("DELETE FROM post_intents WHERE subscription_id IS NULL")
    with op.batch_alter_table("post_intents") as batch:
        batch.drop_constraint(_FOREIGN_KEY, type_="foreignkey")
        batch.create_foreign_key(
            _FOREIGN_KEY, "subscriptions", ["subscription_id"], ["id"], ondelete="CASCADE"
        )
        batch.alter_column("subscription_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("effects")
