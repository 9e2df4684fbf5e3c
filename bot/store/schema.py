"""The store's tables (SQLAlchemy Core). The Alembic revisions in `migrations/` build exactly this.

Times are `UTCDateTime`: timezone-aware UTC in and out on both backends. Record times from the
API stay epoch milliseconds (`*_ms`), as the API gives them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

# Named constraints, so a later migration can drop or alter them by name on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Alembic's record of the schema revision. Not the default `alembic_version`, so the bot can share
# a database (or a PostgreSQL schema) with another application migrated by Alembic.
VERSION_TABLE = "algo_errors_alembic_version"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC.

    SQLite has no time zones: values are stored as naive UTC text (which also makes `<=`
    compare them correctly) and come back with UTC attached. PostgreSQL stores `timestamptz`.
    A naive datetime is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: the store needs an aware one")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("channel_id", Text, nullable=False),
    Column("algorithm", Text, nullable=False),
    Column("schedule", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("next_run_at", UTCDateTime, nullable=False),
    Column("paused_reason", Text, nullable=True),
    Column("consecutive_failures", Integer, nullable=False),
    Column("outage_notified", Boolean, nullable=False),
    # Who is mentioned in its new alerts, regressions and notices (Slack user / user-group ids).
    Column("notify", JSON, nullable=False, server_default="[]"),
    # A new kind of error is announced once this many of its records are unreported.
    Column("min_count", Integer, nullable=False, server_default="1"),
    # An outage or recovery notice posted and not yet confirmed: `kind:id:epoch seconds`.
    Column("pending_notice", Text, nullable=True),
    # The worker running this subscription now, until when (see `Store.claim`).
    Column("lease_owner", Text, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    UniqueConstraint("channel_id", "algorithm"),
    Index(None, "next_run_at"),
    # Ids are never reused on SQLite either, so a log line's id names one subscription forever.
    sqlite_autoincrement=True,
)

reported_records = Table(
    "reported_records",
    metadata,
    Column(
        "subscription_id",
        Integer,
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("request_id", Text, nullable=False),
    # The record's own time (epoch ms), by which old rows are pruned.
    Column("created_at_ms", BigInteger, nullable=False),
    Column("reported_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("subscription_id", "request_id"),
    Index(None, "created_at_ms"),
)

alert_threads = Table(
    "alert_threads",
    metadata,
    # No foreign key to subscriptions: threads outlive an unsubscribe and are reused.
    Column("channel_id", Text, nullable=False),
    Column("algorithm", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("parent_ts", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("muted_until", UTCDateTime, nullable=True),
    Column("state_changed_by", Text, nullable=True),
    Column("state_changed_at", UTCDateTime, nullable=True),
    Column("count", Integer, nullable=False),
    Column("versions", JSON, nullable=False),
    Column("first_seen_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("error_type", Text, nullable=False),
    Column("headline", Text, nullable=False),
    # The key before a newer grouping strategy adopted the thread (old buttons carry it).
    Column("previous_fingerprint", Text, nullable=True),
    Column("latest_version", Text, nullable=True),
    # Who owns it (a Slack user id) since when; kept through resolve, mute and reopen.
    Column("owner", Text, nullable=True),
    Column("owner_since", UTCDateTime, nullable=True),
    # Resolved in the next version after this one (only while resolved that way).
    Column("resolved_through", Text, nullable=True),
    PrimaryKeyConstraint("channel_id", "algorithm", "fingerprint"),
    CheckConstraint("state IN ('open', 'resolved', 'muted', 'regressed')", name="state"),
)

digest_runs = Table(
    "digest_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "subscription_id",
        Integer,
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("posted", Integer, nullable=False),
    Column("detail", Text, nullable=True),
    Index(None, "subscription_id", "started_at"),
    sqlite_autoincrement=True,
)

post_intents = Table(
    "post_intents",
    metadata,
    # A digest's post recorded before it is sent, deleted once Slack confirmed it
    # (see `bot.domain.alerts.PostIntent`).
    Column("id", Text, primary_key=True),
    Column(
        "subscription_id",
        Integer,
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", Text, nullable=False),
    Column("channel_id", Text, nullable=False),
    Column("algorithm", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("thread_ts", Text, nullable=True),
    Column("request_ids", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("kind IN ('alert', 'trace', 'news')", name="kind"),
    Index(None, "subscription_id"),
)
