"""What a digest run needs around it: the notifier and store it talks to (ports), and the
ways a post can fail that the run acts on."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from bot.digest.plan import DigestAction
from bot.domain.alerts import AlertThread, FinishedRun, PendingNotice, PostIntent, Subscription
from bot.errors.grouping import ErrorGroup
from bot.usecases.results import LookupFailure


class AlertGone(Exception):
    """The alert message of a thread is gone from Slack (deleted): its news need a new one."""


class LeaseLost(Exception):
    """Another worker took this subscription over (the lease expired) or it was removed."""


class PostFailed(Exception):
    """Slack did not confirm a post (no answer, a 5xx, a refusal that may pass): what the run
    did not post is tried again at the next ticks."""


class ChannelGone(Exception):
    """Slack will not take posts in this channel (not in it and cannot join, private,
    archived, restricted: see `bot.slack.refusals`): the subscription is paused with `reason`,
    not retried forever."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PostingLease(Protocol):
    """A run's hold on one subscription, under which its posts go out."""

    @property
    def worker(self) -> str:
        """Who holds it: an intent is recorded only while this worker still does."""
        ...

    def check(self) -> None:
        """Before each post, without a statement: raises `LeaseLost` when the run must post
        nothing more (the process is stopping)."""
        ...

    async def renew(self) -> None:
        """Before a post that records no intent first (one statement): as `check`, and raises
        `LeaseLost` when another worker took the subscription over or it was removed."""
        ...


class AlertNotifier(Protocol):
    """What a digest says in a channel; the Slack adapter builds and paces the messages.
    Every method returns once Slack confirmed, and raises `ChannelGone` when it never will."""

    async def new_alert(
        self, channel_id: str, thread: AlertThread, intent_id: str, *, notify: Sequence[str] = ()
    ) -> str:
        """Post the alert message, tagged with the intent, mentioning `notify` (Slack ids);
        returns its `ts`."""
        ...

    async def first_reply(
        self,
        channel_id: str,
        parent_ts: str,
        group: ErrorGroup,
        split_from: AlertThread | None,
        intent_id: str,
        *,
        again: bool = False,
    ) -> bool:
        """The new alert's first thread reply, tagged with the intent: the group's details
        and trace (its file found in the thread, or uploaded), and, for a group an older
        grouping counted in `split_from`, a note saying so. False when Slack did not take
        it (logged; a later run posts it); raises `ChannelGone` when it never will. `again`:
        an earlier try may have got through: what the thread holds is not sent twice."""
        ...

    async def thread_news(
        self, action: DigestAction, intent_id: str | None, *, notify: Sequence[str] = ()
    ) -> None:
        """Reply in the alert's thread (broadcast for a regression, mentioning `notify`; the
        owner is mentioned in every reply), tagged with the intent, unless muted (no intent
        then), and update the alert message itself."""
        ...

    async def find_post(self, intent: PostIntent) -> str | None:
        """The `ts` of the message Slack holds for this intent (a crash may have come between
        the post and its confirmation), or None when it was never posted."""
        ...

    async def mute_over(self, thread: AlertThread) -> bool:
        """Edit the alert to say its mute ran out (an edit notifies nobody); False when Slack
        did not take the edit for its own trouble (a later run tries again)."""
        ...

    async def refresh(self, thread: AlertThread) -> None:
        """Edit the alert to show the thread as it stands (an edit notifies nobody)."""
        ...

    async def outage(
        self, subscription: Subscription, failure: LookupFailure, notice_id: str
    ) -> None:
        """Tell the channel its digests have failed some runs in a row, and why; tagged with
        the notice's id."""
        ...

    async def recovered(self, subscription: Subscription, notice_id: str) -> None: ...

    async def find_notice(self, channel_id: str, notice: PendingNotice) -> bool:
        """Whether the channel holds the notice (a crash may have come between its post and
        its confirmation)."""
        ...


class DigestStore(Protocol):
    """What a digest run needs of the store."""

    async def claim_due(
        self, worker: str, now: datetime, lease_seconds: float, *, everything: bool = False
    ) -> list[Subscription]: ...

    async def record_intent(self, intent: PostIntent, worker: str) -> bool:
        """Store the intent only while `worker` holds its subscription's lease (one statement,
        the lease checked in it); False when it does not (taken over, or removed)."""
        ...

    async def settle_intent(self, intent_id: str, *, then: PostIntent | None = None) -> bool: ...

    async def open_intents(
        self, subscription_ids: Collection[int]
    ) -> dict[int, list[PostIntent]]: ...

    async def renew_leases(
        self, worker: str, subscription_ids: Collection[int], until: datetime
    ) -> set[int]: ...

    async def finish_runs(self, worker: str, runs: Sequence[FinishedRun]) -> None: ...

    async def pause(self, subscription_id: int, reason: str) -> bool: ...

    async def record_notice(
        self, subscription_id: int, notice: PendingNotice, worker: str
    ) -> bool: ...

    async def settle_notice(
        self, subscription_id: int, notice: PendingNotice, *, outage_notified: bool
    ) -> bool: ...

    async def reported_by_subscription(
        self, subscription_ids: Collection[int]
    ) -> dict[int, frozenset[str]]: ...

    async def mark_reported(
        self, subscription_id: int, records: Iterable[tuple[str, int]], now: datetime
    ) -> None: ...

    async def prune_reported(self, before_ms: int) -> int: ...

    async def prune_digest_runs(self, before: datetime) -> int: ...

    async def alert_threads(
        self, channel_id: str, algorithm: str, keys: Collection[str]
    ) -> list[AlertThread]: ...

    async def create_alert_thread(self, thread: AlertThread) -> bool: ...

    async def adopt_alert_thread(self, thread: AlertThread) -> bool: ...

    async def expired_mutes(self, now: datetime) -> list[AlertThread]: ...

    async def update_alert_thread(
        self,
        thread: AlertThread,
        *,
        fields: Collection[str] | None = None,
        expected: AlertThread | None = None,
    ) -> bool: ...
