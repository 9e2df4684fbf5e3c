"""What one digest run of one subscription should say (INTERFACE §3.2), decided without I/O.

Given the groups of the records this subscription has not reported yet and the channel's
alert threads, each group becomes one action:
- no alert thread yet → a new alert (a top-level message, its trace in the thread); new alerts
  of one run come oldest first, so the channel reads in order;
- an open thread → a reply in it, and the parent's counters updated;
- a resolved thread → the same, broadcast to the channel: a regression;
- a muted thread → no reply; the parent's counters are still updated (an edit notifies
  nobody). A mute whose time is over counts as open again.
The runner carries the actions out and marks an action's records as reported only once Slack
confirmed its post.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from bot.errors.grouping import ErrorGroup
from bot.store.models import AlertState, AlertThread


class Kind(StrEnum):
    NEW_ALERT = "new_alert"
    RECURRENCE = "recurrence"
    REGRESSION = "regression"
    MUTED = "muted"


@dataclass(frozen=True, slots=True)
class DigestAction:
    kind: Kind
    group: ErrorGroup
    """The new occurrences of one bug in this run."""
    thread: AlertThread
    """The alert thread as it is after this action (for a new alert: without a parent yet)."""
    mute_ended: bool = False
    """The thread was muted and its mute is over: the parent should say so."""

    @property
    def reported(self) -> list[tuple[str, int]]:
        """What to mark as reported once Slack confirmed: (request_id, created_at_ms)."""
        return [(o.record.request_id, o.record.created_at) for o in self.group.occurrences]

    @property
    def replies(self) -> bool:
        """Whether the thread gets a reply (all but muted groups)."""
        return self.kind is not Kind.MUTED


def mute_is_over(thread: AlertThread, now: datetime) -> bool:
    return (
        thread.state is AlertState.MUTED
        and thread.muted_until is not None
        and thread.muted_until <= now
    )


def merge(thread: AlertThread, group: ErrorGroup) -> AlertThread:
    """The thread's counters with the group's new occurrences added."""
    versions = tuple(sorted(set(thread.versions) | set(group.versions)))
    return replace(
        thread,
        count=thread.count + group.count,
        versions=versions,
        first_seen_ms=min(thread.first_seen_ms, group.first_seen),
        last_seen_ms=max(thread.last_seen_ms, group.last_seen),
        headline=group.headline,
        error_type=group.error_type,
    )


def new_thread(channel_id: str, algorithm: str, group: ErrorGroup) -> AlertThread:
    """The alert thread a new group starts; `parent_ts` is set once Slack posted the alert."""
    return AlertThread(
        channel_id=channel_id,
        algorithm=algorithm,
        fingerprint=group.fingerprint,
        parent_ts="",
        state=AlertState.OPEN,
        muted_until=None,
        state_changed_by=None,
        state_changed_at=None,
        count=group.count,
        versions=group.versions,
        first_seen_ms=group.first_seen,
        last_seen_ms=group.last_seen,
        error_type=group.error_type,
        headline=group.headline,
    )


def plan_digest(
    channel_id: str,
    algorithm: str,
    groups: Sequence[ErrorGroup],
    threads: Mapping[str, AlertThread],
    now: datetime,
) -> list[DigestAction]:
    """One action per group: new alerts first, oldest first; then the known groups' news."""
    new_alerts = []
    known = []
    for group in groups:
        thread = threads.get(group.fingerprint)
        if thread is None:
            thread = new_thread(channel_id, algorithm, group)
            new_alerts.append(DigestAction(Kind.NEW_ALERT, group, thread))
            continue
        merged = merge(thread, group)
        if mute_is_over(thread, now):
            merged = replace(merged, state=AlertState.OPEN, muted_until=None)
            known.append(DigestAction(Kind.RECURRENCE, group, merged, mute_ended=True))
        elif thread.state is AlertState.MUTED:
            known.append(DigestAction(Kind.MUTED, group, merged))
        elif thread.state is AlertState.RESOLVED:
            regressed = replace(
                merged,
                state=AlertState.OPEN,
                state_changed_by=None,
                state_changed_at=now,
            )
            known.append(DigestAction(Kind.REGRESSION, group, regressed))
        else:
            known.append(DigestAction(Kind.RECURRENCE, group, merged))
    new_alerts.sort(key=lambda action: action.group.first_seen)
    known.sort(key=lambda action: action.group.first_seen)
    return new_alerts + known
