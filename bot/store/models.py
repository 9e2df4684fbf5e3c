"""What the store holds, as plain values: subscriptions, alert threads and digest runs.

No SQLAlchemy here, so the use cases and the pure core can name these types without depending
on the database. Every `datetime` is timezone-aware UTC, whatever the backend stores.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Subscription:
    """A channel's standing order for digests of one algorithm's new errors."""

    id: int
    channel_id: str
    algorithm: str
    """As the user typed it: `owner/name` or `id:UUID`."""
    schedule: str
    """`every:15m`, `daily:09:00` or `weekdays:09:00` (INTERFACE §3)."""
    timezone: str
    """An IANA name such as `Europe/Berlin`; `daily:` and `weekdays:` times are local to it."""
    created_by: str
    """The Slack user id of who subscribed first."""
    created_at: datetime
    next_run_at: datetime
    paused_reason: str | None
    """Why digests stopped (e.g. `channel_not_found`); `None` while running. Subscribing again
    clears it."""
    consecutive_failures: int
    """Runs in a row that could not reach the cluster; a successful run resets it."""
    outage_notified: bool
    """The channel has been told the cluster is unreachable and not yet that it recovered."""


class AlertState(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    MUTED = "muted"


ALERT_COUNTERS = ("count", "versions", "first_seen_ms", "last_seen_ms", "error_type", "headline")
"""What a digest changes on an alert thread."""
ALERT_STATE = ("state", "muted_until", "state_changed_by", "state_changed_at")
"""What resolve, mute and reopen (and a regression or the end of a mute) change."""


@dataclass(frozen=True, slots=True)
class AlertThread:
    """One kind of error in one channel: its alert message (the parent) and what it has seen.

    Keyed by (channel_id, algorithm, fingerprint); there is never more than one per key. It
    outlives the subscription, so a channel that subscribes again keeps its threads.
    """

    channel_id: str
    algorithm: str
    fingerprint: str
    parent_ts: str
    """The Slack `ts` of the alert message; replies go to its thread."""
    state: AlertState
    muted_until: datetime | None
    """When a mute ends; `None` while muted means muted until reopened."""
    state_changed_by: str | None
    state_changed_at: datetime | None
    count: int
    versions: tuple[str, ...]
    first_seen_ms: int
    """Epoch milliseconds, as the API gives record times."""
    last_seen_ms: int
    error_type: str
    headline: str


@dataclass(frozen=True, slots=True)
class DigestRun:
    """What one digest run of one subscription did, for `list`, logs and diagnosis."""

    subscription_id: int
    started_at: datetime
    finished_at: datetime
    outcome: str
    """E.g. `ok`, `cluster_unreachable`, `paused`; the runner's vocabulary."""
    posted: int
    """Messages posted to Slack by this run."""
    detail: str | None


@dataclass(frozen=True, slots=True)
class FinishedRun:
    """A subscription's run as it ends: when it runs next, whether it succeeded, what it did."""

    run: DigestRun
    next_run_at: datetime
    succeeded: bool
    """The cluster answered: resets the count of consecutive failures (else adds one)."""
