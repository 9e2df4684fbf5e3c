"""What one digest run of one subscription should say, decided without I/O.

Given the groups of the records this subscription has not reported yet and the channel's
alert threads, each group becomes one action:
- no alert thread yet → a new alert (a top-level message, its trace in the thread); new alerts
  of one run come oldest first, so the channel reads in order; a group with fewer unreported
  records than the subscription's threshold (`min_count`) gets no action yet: its records stay
  unreported and are counted again by later runs;
- a known thread → what the alert state machine (`bot.domain.alerts.sighted`) says: a reply,
  a broadcast reply (a regression) or silence (muted), and the parent's counters updated.

Grouping strategies change (`bot.errors.grouping.FINGERPRINT_VERSION`); threads keep their key.
A thread keyed by an older fingerprint is adopted by the first group (oldest first) that
carries that old fingerprint; any other group the old strategy had merged into it is a bug of
its own and gets its own alert, which says once that it was split off.

The runner carries the actions out and marks an action's records as reported only once Slack
confirmed its post.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from bot.domain.alerts import AlertState, AlertThread, Sighting, Telling, new_thread, sighted
from bot.errors.grouping import ErrorGroup


class Kind(StrEnum):
    NEW_ALERT = "new_alert"
    RECURRENCE = "recurrence"
    REGRESSION = "regression"
    MUTED = "muted"


_KIND_OF_TELLING = {
    Telling.REPLY: Kind.RECURRENCE,
    Telling.BROADCAST: Kind.REGRESSION,
    Telling.SILENT: Kind.MUTED,
}


@dataclass(frozen=True, slots=True)
class DigestAction:
    kind: Kind
    group: ErrorGroup
    """The new occurrences of one bug in this run."""
    thread: AlertThread
    """The alert thread as it is after this action (for a new alert: without a parent yet)."""
    mute_ended: bool = False
    """The thread was muted and its mute is over: the parent should say so."""
    adopted_from: str | None = None
    """The older fingerprint under which the store keeps this thread until it is re-keyed."""
    split_from: AlertThread | None = None
    """For a new alert: the thread these errors were counted in by an older grouping."""
    read: AlertThread | None = None
    """For a known thread: as the plan read it (its state is written only if still so)."""

    @property
    def reported(self) -> list[tuple[str, int]]:
        """What to mark as reported once Slack confirmed: (request_id, created_at_ms)."""
        return [(o.record.request_id, o.record.created_at) for o in self.group.occurrences]

    @property
    def replies(self) -> bool:
        """Whether the thread gets a reply (all but muted groups)."""
        return self.kind is not Kind.MUTED


def sighting(group: ErrorGroup) -> Sighting:
    return Sighting(
        count=group.count,
        versions=group.versions,
        first_seen_ms=group.first_seen,
        last_seen_ms=group.last_seen,
        error_type=group.error_type,
        headline=group.headline,
        latest_version=group.latest.record.algoversion,
    )


def thread_keys(groups: Iterable[ErrorGroup]) -> set[str]:
    """Every key under which the store may hold these groups' threads."""
    return {key for g in groups for key in (g.fingerprint, *g.legacy_fingerprints)}


def known_action(
    group: ErrorGroup, thread: AlertThread, now: datetime, adopted_from: str | None = None
) -> DigestAction:
    """The news of a group that already has an alert thread."""
    after, telling = sighted(thread, sighting(group), now)
    mute_ended = thread.state is AlertState.MUTED and after.state is AlertState.OPEN
    return DigestAction(
        _KIND_OF_TELLING[telling], group, after, mute_ended=mute_ended,
        adopted_from=adopted_from, read=thread,
    )  # fmt: skip


def plan_digest(
    channel_id: str,
    algorithm: str,
    groups: Sequence[ErrorGroup],
    threads: Iterable[AlertThread],
    now: datetime,
    min_count: int = 1,
) -> list[DigestAction]:
    """One action per group: new alerts first, oldest first; then the known groups' news.

    `threads`: the channel's alert threads of this algorithm stored under any of the groups'
    keys (`thread_keys`), current or older."""
    by_key = {thread.fingerprint: thread for thread in threads}
    adopted = {t.previous_fingerprint: t for t in by_key.values() if t.previous_fingerprint}
    new_alerts = []
    known = []
    for group in sorted(groups, key=lambda g: g.first_seen):
        thread = by_key.get(group.fingerprint)
        if thread is not None:
            known.append(known_action(group, thread, now))
            continue
        split_from = None
        for old_key in group.legacy_fingerprints:
            old = by_key.get(old_key)
            if old is not None and old_key not in adopted:
                rekeyed = replace(old, fingerprint=group.fingerprint, previous_fingerprint=old_key)
                adopted[old_key] = rekeyed
                known.append(known_action(group, rekeyed, now, adopted_from=old_key))
                break
            split_from = split_from or adopted.get(old_key)
        else:
            if group.count < min_count:  # not yet: counted again by the next runs
                continue
            fresh = new_thread(channel_id, algorithm, group.fingerprint, sighting(group))
            new_alerts.append(DigestAction(Kind.NEW_ALERT, group, fresh, split_from=split_from))
    return new_alerts + known
