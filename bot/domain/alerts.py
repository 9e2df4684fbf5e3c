"""Subscriptions, alert threads and the alert state machine: every transition in one place.

An alert thread is one kind of error in one channel. Its state moves by two kinds of event:
what people do from Slack (`AlertAction`: resolve, resolve in the next version, mute, reopen;
take, assign and release change its owner, never its state) and what digests see (new
occurrences, a mute running out). `act`, `sighted` and `mute_expired` are the only functions
that change a thread's state; the store maps rows to these values and back, digest planning and
the use cases call them.

Resolved in the next version after V: occurrences in versions up to V are told quietly and it
stays resolved; one in a newer version (`bot.domain.versions.is_newer`) is a regression.

```
            resolve                        new occurrence
  OPEN ───────────────▶ RESOLVED ───────────────────────▶ REGRESSED
   ▲ │ mute                 │ reopen                  resolve │ mute
   │ ▼                      ▼                                 ▼
  MUTED ──reopen / mute runs out──▶ OPEN             RESOLVED / MUTED
```

Pure: no I/O, no clock (every transition takes `now`). Every `datetime` is timezone-aware UTC.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.domain.versions import is_newer, resolved_through


@dataclass(frozen=True, slots=True)
class Subscription:
    """A channel's standing order for digests of one algorithm's new errors."""

    id: int
    channel_id: str
    algorithm: str
    """As the user typed it: `owner/name` or `id:UUID`."""
    schedule: str
    """`every:15m`, `daily:09:00` or `weekdays:09:00` (see `bot.domain.schedule`)."""
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
    notify: tuple[str, ...] = ()
    """Slack user and user-group ids mentioned in its new alerts, regressions and notices."""
    min_count: int = 1
    """A new kind of error is announced once this many of its records are unreported."""
    pending_notice: PendingNotice | None = None
    """A notice about to be posted and not yet confirmed (a crash came between)."""


class NoticeKind(enum.StrEnum):
    """What a subscription's channel is told of its cluster (§3.2: one notice each)."""

    OUTAGE = "outage"
    """The cluster could not be reached for several runs in a row."""
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class PendingNotice:
    """An outage or recovery notice, stored before it is sent as a `PostIntent` is, its id in
    the message's metadata: after a crash between the post and its confirmation, the next run
    finds it in the channel and does not tell the channel twice."""

    kind: NoticeKind
    id: str
    created_at: datetime


class RunOutcome(enum.StrEnum):
    """How one subscription's digest run ended."""

    OK = "ok"
    CLUSTER_FAILED = "cluster_failed"
    """The cluster could not be reached or answered badly: retried with backoff."""
    PAUSED = "paused"
    """Slack will not take posts in the channel: the subscription is paused."""
    LEASE_LOST = "lease_lost"
    """Another worker took the subscription over, or it was unsubscribed meanwhile."""
    ERROR = "error"
    """A bug: logged with its traceback, never counted as the cluster's fault."""


@dataclass(frozen=True, slots=True)
class DigestRun:
    """What one digest run of one subscription did, for logs and diagnosis."""

    subscription_id: int
    started_at: datetime
    finished_at: datetime
    outcome: RunOutcome
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


class PostKind(enum.StrEnum):
    """What a digest posts for an alert thread, each recorded as an intent before it is sent."""

    ALERT = "alert"
    """A new alert: the top-level message."""
    TRACE = "trace"
    """A new alert's first reply: the group's details and trace (and its file)."""
    NEWS = "news"
    """A reply telling new occurrences (broadcast for a regression)."""


@dataclass(frozen=True, slots=True)
class PostIntent:
    """A post a digest is about to make, stored before it is sent and settled once Slack
    confirmed it. Its id travels in the message's metadata, so after a crash a run finds in
    Slack what was posted and adopts it instead of posting it again."""

    id: str
    subscription_id: int
    kind: PostKind
    channel_id: str
    algorithm: str
    fingerprint: str
    thread_ts: str | None
    """The alert's `ts`, for replies."""
    request_ids: tuple[str, ...]
    """The records the post tells of."""
    created_at: datetime


class AlertState(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    MUTED = "muted"
    REGRESSED = "regressed"
    """It was resolved and came back; open until someone acts on it again."""


class AlertAction(enum.StrEnum):
    """What a person can do to an alert from its buttons (`action_id` = `group_` + value)."""

    RESOLVE = "resolve"
    RESOLVE_NEXT = "resolve_next"
    MUTE = "mute"
    REOPEN = "reopen"
    TAKE = "take"
    ASSIGN = "assign"
    RELEASE = "release"


OWNER_ACTIONS = frozenset({AlertAction.TAKE, AlertAction.ASSIGN, AlertAction.RELEASE})
"""The actions that change who owns an alert, never its state."""


MUTE_FOR: dict[str, timedelta | None] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "forever": None,
}
"""The mute choices of the alert's select; `None`: until someone reopens it."""

ALERT_COUNTERS = (
    "count", "versions", "latest_version", "first_seen_ms", "last_seen_ms", "error_type",
    "headline",
)  # fmt: skip
"""What a digest changes on an alert thread."""
ALERT_STATE = ("state", "muted_until", "state_changed_by", "state_changed_at", "resolved_through")
"""What resolve, mute and reopen (and a regression or the end of a mute) change."""
ALERT_OWNER = ("owner", "owner_since")
"""What take, assign and release change."""


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
    """Who resolved, muted or reopened it; `None` when the bot changed it (a regression, the
    end of a mute)."""
    state_changed_at: datetime | None
    count: int
    versions: tuple[str, ...]
    first_seen_ms: int
    """Epoch milliseconds, as the API gives record times."""
    last_seen_ms: int
    error_type: str
    headline: str
    previous_fingerprint: str | None = None
    """The key this thread had under an older grouping strategy, before a group of the current
    one adopted it (old buttons still carry it)."""
    latest_version: str | None = None
    """The version of the latest occurrence seen (when it had one)."""
    owner: str | None = None
    """The Slack user id of who owns it (took it, or was assigned it); kept through resolve,
    mute and reopen."""
    owner_since: datetime | None = None
    resolved_through: str | None = None
    """Resolved in the next version after this one (V): set only while resolved that way."""


@dataclass(frozen=True, slots=True)
class AlertRef:
    """What an alert's buttons carry to find their thread again: the fingerprint and a short
    digest of the algorithm's name (never the name: a button's value holds at most 2,000
    characters and a block id 255). The channel comes with the click, from Slack."""

    fingerprint: str
    algorithm_digest: str

    @classmethod
    def of(cls, thread: AlertThread) -> AlertRef:
        return cls(thread.fingerprint, algorithm_digest(thread.algorithm))

    @property
    def text(self) -> str:
        return f"{self.fingerprint}@{self.algorithm_digest}"

    @classmethod
    def parse(cls, text: str) -> AlertRef | None:
        """The ref `text` wrote, or the JSON key older alerts carry (`{"a": …, "f": …}`);
        None for anything else."""
        fingerprint, at, digest = text.partition("@")
        if at and fingerprint and len(digest) == _DIGEST_LENGTH:
            return cls(fingerprint, digest)
        try:
            key = json.loads(text)
            return cls(str(key["f"]), algorithm_digest(str(key["a"])))
        except (ValueError, TypeError, KeyError):
            return None

    def matches(self, thread: AlertThread) -> bool:
        return self.fingerprint in (
            thread.fingerprint,
            thread.previous_fingerprint,
        ) and self.algorithm_digest == algorithm_digest(thread.algorithm)


_DIGEST_LENGTH = 10


def algorithm_digest(algorithm: str) -> str:
    """A short stable stand-in for an algorithm's name (40 bits: collisions within one channel's
    alerts of one fingerprint are out of reach)."""
    return hashlib.sha1(algorithm.encode()).hexdigest()[:_DIGEST_LENGTH]


@dataclass(frozen=True, slots=True)
class Sighting:
    """New occurrences of a thread's error seen by one digest run (plain values, so this
    module needs nothing of how errors are read)."""

    count: int
    versions: tuple[str, ...]
    first_seen_ms: int
    last_seen_ms: int
    error_type: str
    headline: str
    latest_version: str | None = None
    """The version of the latest of these occurrences."""


class Telling(enum.StrEnum):
    """How a digest tells a thread's new occurrences."""

    REPLY = "reply"
    """A reply in the thread."""
    BROADCAST = "broadcast"
    """A reply also sent to the channel: a regression."""
    SILENT = "silent"
    """Nothing posted (muted); the parent's counters are still edited."""


class IllegalTransition(ValueError):
    """The action does not apply to the alert in its state (a stale button, a forged value);
    the message says why, for the user who clicked."""


def new_thread(channel_id: str, algorithm: str, fingerprint: str, seen: Sighting) -> AlertThread:
    """The thread a new kind of error starts: open; `parent_ts` is set once Slack posted it."""
    return AlertThread(
        channel_id=channel_id,
        algorithm=algorithm,
        fingerprint=fingerprint,
        parent_ts="",
        state=AlertState.OPEN,
        muted_until=None,
        state_changed_by=None,
        state_changed_at=None,
        count=seen.count,
        versions=seen.versions,
        first_seen_ms=seen.first_seen_ms,
        last_seen_ms=seen.last_seen_ms,
        error_type=seen.error_type,
        headline=seen.headline,
        latest_version=seen.latest_version,
    )


_ANY_STATE = frozenset(AlertState)
_ALLOWED: dict[AlertAction, frozenset[AlertState]] = {
    AlertAction.RESOLVE: frozenset({AlertState.OPEN, AlertState.REGRESSED}),
    AlertAction.RESOLVE_NEXT: frozenset({AlertState.OPEN, AlertState.REGRESSED}),
    AlertAction.MUTE: frozenset({AlertState.OPEN, AlertState.REGRESSED}),
    AlertAction.REOPEN: frozenset({AlertState.RESOLVED, AlertState.MUTED}),
    AlertAction.TAKE: _ANY_STATE,
    AlertAction.ASSIGN: _ANY_STATE,
    AlertAction.RELEASE: _ANY_STATE,
}
"""The actions an alert's parent offers in each state (the same table draws its buttons)."""


def actions_offered(thread: AlertThread) -> tuple[AlertAction, ...]:
    """What the alert's parent offers: its state's actions; release only while it has an
    owner; resolve in the next version only once a version was seen."""
    return tuple(
        action
        for action, states in _ALLOWED.items()
        if thread.state in states
        and (action is not AlertAction.RELEASE or thread.owner is not None)
        and (action is not AlertAction.RESOLVE_NEXT or _through(thread) is not None)
    )


def _through(thread: AlertThread) -> str | None:
    return resolved_through(thread.versions, thread.latest_version)


def act(
    thread: AlertThread,
    action: AlertAction,
    *,
    user: str,
    now: datetime,
    mute: str | None = None,
    assignee: str | None = None,
) -> AlertThread:
    """A person's action: resolve (now, or in the next version), mute (for one of `MUTE_FOR`),
    reopen; take it, assign it to `assignee`, or release it.

    Raises `IllegalTransition` when the action does not apply to the thread as it is (the
    alert already resolved, a mute of a muted alert, a release of an alert nobody owns, a take
    by its owner) or a choice is missing or unknown."""
    if action in OWNER_ACTIONS:
        return _owned(thread, action, user=user, now=now, assignee=assignee)
    if thread.state not in _ALLOWED[action]:
        done = {
            AlertAction.RESOLVE: "resolved",
            AlertAction.RESOLVE_NEXT: "resolved",
            AlertAction.MUTE: "muted",
        }
        raise IllegalTransition(
            f"this alert is {thread.state.value}; it cannot be {done.get(action, 'reopened')}"
        )
    through: str | None = None
    if action is AlertAction.RESOLVE_NEXT:
        through = _through(thread)
        if through is None:
            raise IllegalTransition("no version of it was seen, so there is no next version")
    until: datetime | None = None
    if action is AlertAction.MUTE:
        if mute not in MUTE_FOR:
            raise IllegalTransition(f"{mute!r} is not a mute length")
        length = MUTE_FOR[mute]
        until = now + length if length is not None else None
    state = {
        AlertAction.RESOLVE: AlertState.RESOLVED,
        AlertAction.RESOLVE_NEXT: AlertState.RESOLVED,
        AlertAction.MUTE: AlertState.MUTED,
        AlertAction.REOPEN: AlertState.OPEN,
    }[action]
    return replace(
        thread,
        state=state,
        muted_until=until,
        state_changed_by=user,
        state_changed_at=now,
        resolved_through=through,
    )


def _owned(
    thread: AlertThread, action: AlertAction, *, user: str, now: datetime, assignee: str | None
) -> AlertThread:
    if action is AlertAction.RELEASE:
        if thread.owner is None:
            raise IllegalTransition("nobody owns this alert; there is nothing to hand back")
        if thread.owner != user:
            raise IllegalTransition(
                "only its owner can hand it back; take it or assign it to someone instead"
            )
        return replace(thread, owner=None, owner_since=None)
    owner = user if action is AlertAction.TAKE else assignee
    if not owner:
        raise IllegalTransition("no one was chosen to own it")
    if owner == thread.owner:
        raise IllegalTransition(
            "you already own this alert" if owner == user else "they already own this alert"
        )
    return replace(thread, owner=owner, owner_since=now)


def mute_is_over(thread: AlertThread, now: datetime) -> bool:
    return (
        thread.state is AlertState.MUTED
        and thread.muted_until is not None
        and thread.muted_until <= now
    )


def mute_expired(thread: AlertThread, now: datetime) -> AlertThread:
    """A mute that ran out: open again, changed by nobody at the moment the mute ended.
    Raises `IllegalTransition` when the thread is not muted or its mute still runs."""
    if not mute_is_over(thread, now):
        raise IllegalTransition("the alert is not muted, or its mute has not run out")
    return replace(
        thread,
        state=AlertState.OPEN,
        muted_until=None,
        state_changed_by=None,
        state_changed_at=thread.muted_until,
    )


def sighted(thread: AlertThread, seen: Sighting, now: datetime) -> tuple[AlertThread, Telling]:
    """New occurrences of the thread's error: its counters grow and, by its state,

    - open or regressed → told in the thread;
    - resolved → regressed, told in the thread and the channel; resolved in the next version
      after V and seen only in versions up to V → told in the thread, still resolved;
    - muted → not told (an edit of the counters notifies nobody);
    - muted with its mute run out → open again first, then told.
    """
    grown = replace(
        thread,
        count=thread.count + seen.count,
        versions=tuple(sorted(set(thread.versions) | set(seen.versions))),
        first_seen_ms=min(thread.first_seen_ms, seen.first_seen_ms),
        last_seen_ms=max(thread.last_seen_ms, seen.last_seen_ms),
        headline=seen.headline,
        error_type=seen.error_type,
        latest_version=seen.latest_version or thread.latest_version,
    )
    if mute_is_over(grown, now):
        return mute_expired(grown, now), Telling.REPLY
    if grown.state is AlertState.MUTED:
        return grown, Telling.SILENT
    through = grown.resolved_through if grown.state is AlertState.RESOLVED else None
    if through is not None and not any(is_newer(v, through) for v in seen.versions):
        return grown, Telling.REPLY  # only old versions: told quietly, still resolved
    if grown.state is AlertState.RESOLVED:
        regressed = replace(
            grown,
            state=AlertState.REGRESSED,
            muted_until=None,
            state_changed_by=None,
            state_changed_at=now,
            resolved_through=None,
        )
        return regressed, Telling.BROADCAST
    return grown, Telling.REPLY
