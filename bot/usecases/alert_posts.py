"""One subscription's alert posts, each told exactly once whatever fails.

Every post is recorded as an intent before it is sent and settled once Slack confirmed it;
its id travels in the message's metadata. A run first settles what an earlier run left open:
what Slack holds is adopted (its records counted as reported, a new alert's trace reply then
posted), what it does not is planned again from the records, which stay unreported until a
post that tells of them is confirmed. A new alert's trace reply is an intent of its own,
which takes the place of the alert's once Slack confirmed the alert (one statement), retried
by later runs until Slack takes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.digest.plan import DigestAction, Kind, known_action, plan_digest, sighting, thread_keys
from bot.domain.alerts import (
    ALERT_COUNTERS,
    ALERT_STATE,
    PostIntent,
    PostKind,
    Subscription,
    new_thread,
)
from bot.domain.commands import API_WINDOW_SECONDS
from bot.errors.grouping import ErrorGroup, group_occurrences, read_occurrences
from bot.errors.records import RecordBatch
from bot.usecases.digest_ports import (
    AlertGone,
    AlertNotifier,
    DigestStore,
    LeaseLost,
    PostingLease,
)
from bot.usecases.turns import CpuTurns


@dataclass
class Posting:
    """One subscription's posts in one run, each only while `lease` holds: a post that
    records an intent first is fenced by it (the intent is stored only while this worker holds
    the lease: `LeaseLost` otherwise), any other post renews the lease before it goes."""

    store: DigestStore
    notifier: AlertNotifier
    subscription: Subscription
    batch: RecordBatch
    now: datetime
    lease: PostingLease
    clock: Callable[[], datetime]
    """The run's clock (`now` plus the time the run has taken): when an intent is recorded,
    which is when a later run looks for its post in Slack. A post can go late in a long run
    (a busy channel's turn, pacing, 429s); `now` alone would have it looked for too early."""
    fresh: set[str] = field(default_factory=set)
    """The request ids this subscription has not reported (as read when the run began)."""
    unconfirmed: int = 0
    """Posts Slack did not take this run (left as open intents for the next ticks)."""
    told: set[str] = field(default_factory=set)
    """Request ids an earlier run's post told of, adopted from Slack in this run."""
    turns: CpuTurns = field(default_factory=CpuTurns)
    """Reading records (an open intent's, the new ones) waits for one (the process's, see
    `CpuTurns`; a run of its own has its own)."""

    # Recovery -----------------------------------------------------------------------------

    async def settle_open(self, intents: Sequence[PostIntent]) -> None:
        """Settle what an earlier run of this subscription left open, oldest first.

        An intent's own records may have left the API's window since (at most 200 records: a
        bug that fired hundreds of times meanwhile pushes them out): an alert is still looked
        for in Slack and adopted, and an alert's trace still posted, from the newer records of
        its bug; only when none of its bug is left is there nothing to tell."""
        for intent in intents:
            await self.lease.renew()
            await self.turns.take()
            group = self._group_of(intent)
            if intent.kind is PostKind.ALERT:
                ts = await self.notifier.find_post(intent)
                if group is not None or ts is None:
                    await self._adopt_alert(intent, ts, group)
                    continue
                await self.turns.take()
                bug = self._bug_of(intent)
                if bug is not None:
                    await self._adopt_alert(intent, ts, bug, told=False)
                elif self.now - intent.created_at > API_WINDOW:
                    await self.store.settle_intent(intent.id)  # its bug is gone for good
                # else left open: nothing of its bug to store its thread with yet; adopted
                # when its bug fires again, so that is told in this alert, not a second one
            elif intent.kind is PostKind.TRACE:  # the reply and its file, each if missing
                group = group or self._bug_of(intent)  # within the turn taken above
                if group is None:
                    await self.store.settle_intent(intent.id)
                else:
                    await self._post_trace(intent, group, None, again=True)
            elif group is None:  # news of records since gone: newer ones are news of their own
                await self.store.settle_intent(intent.id)
            else:
                await self._adopt_news(intent, await self.notifier.find_post(intent), group)

    async def _adopt_alert(
        self, intent: PostIntent, ts: str | None, group: ErrorGroup | None, *, told: bool = True
    ) -> None:
        """The alert of `intent`, found in Slack at `ts` (or not: then planned again from its
        records, which are unreported), adopted: its thread stored, its trace reply next.
        `told`: `group` is the records the alert told of, now counted reported; else it is
        newer records of its bug (the alert's own left the API's window), which the thread
        does not count yet: they are this run's news in it."""
        if ts is None or group is None:  # not posted; or posted, but nothing of it is left
            await self.store.settle_intent(intent.id)
            return
        seen = sighting(group)
        if not told:  # what the alert said: its records' number, at about its time
            at = int(intent.created_at.timestamp() * 1000)
            seen = replace(
                seen, count=len(intent.request_ids), versions=(), first_seen_ms=at,
                last_seen_ms=at, latest_version=None,
            )  # fmt: skip
        thread = replace(
            new_thread(intent.channel_id, intent.algorithm, intent.fingerprint, seen),
            parent_ts=ts,
        )
        if not await self.store.create_alert_thread(thread):  # stored before the crash, or
            # an alert posted again for a deleted one: this message is the alert now
            await self.store.update_alert_thread(thread, fields=("parent_ts",))
        if told:
            await self.store.mark_reported(self.subscription.id, _reported(group), self.now)
            self.told.update(group.request_ids)
        trace = self._intent(PostKind.TRACE, intent.fingerprint, group, thread_ts=ts)
        if not await self.store.settle_intent(intent.id, then=trace):
            raise LeaseLost
        await self._post_trace(trace, group, None, again=True)

    async def _adopt_news(self, intent: PostIntent, ts: str | None, group: ErrorGroup) -> None:
        threads = await self.store.alert_threads(
            intent.channel_id, intent.algorithm, [intent.fingerprint]
        )
        current = next((t for t in threads if t.fingerprint == intent.fingerprint), None)
        unrecorded = any(rid in self.fresh for rid in group.request_ids)
        if ts is not None and current is not None and unrecorded:  # told: count it as told
            action = known_action(group, current, self.now)
            await self._record_news(action)
        if ts is not None:
            self.told.update(group.request_ids)
        await self.store.settle_intent(intent.id)

    def _group_of(self, intent: PostIntent) -> ErrorGroup | None:
        """The intent's own records still in the API's window, as a group."""
        wanted = set(intent.request_ids)
        records = [r for r in self.batch.records if r.request_id in wanted]
        groups = group_occurrences(read_occurrences(records))
        return next((g for g in groups if g.fingerprint == intent.fingerprint), None)

    def _bug_of(self, intent: PostIntent) -> ErrorGroup | None:
        """The records of the intent's bug in this run's batch (its own having left it)."""
        groups = group_occurrences(read_occurrences(self.batch.records))
        return next((g for g in groups if g.fingerprint == intent.fingerprint), None)

    # This run's news ----------------------------------------------------------------------

    async def report_new(self) -> int:
        """Post what this subscription has not reported yet; returns the actions carried out.

        Before each action the alert thread is read again, so a click meanwhile is taken into
        account, and the lease checked: by the action's intent when it records one first (a
        new alert, news with replies), else renewed (or the run stops). A record counts as
        reported as soon as Slack confirmed the message that tells of it."""
        fresh = self.fresh - self.told
        if not fresh:
            return 0
        await self.turns.take()
        records = (r for r in self.batch.records if r.request_id in fresh)
        groups = group_occurrences(read_occurrences(records))
        channel, algorithm = self.subscription.channel_id, self.subscription.algorithm
        threads = await self.store.alert_threads(channel, algorithm, thread_keys(groups))
        planned = plan_digest(
            channel, algorithm, groups, threads, self.now, self.subscription.min_count
        )
        for action in planned:
            if action.kind is not Kind.NEW_ALERT:
                action = await self._replanned(action)
            try:
                await self._carry_out(action)
            except AlertGone:  # the alert message was deleted: the news get a new one
                await self._new_alert(replace(action, kind=Kind.NEW_ALERT), exists=True)
        return len(planned)

    async def _replanned(self, action: DigestAction) -> DigestAction:
        """A known group's action planned again on its thread as stored now, so a click since
        the plan (on the alert's current or old buttons) is taken into account."""
        key = action.adopted_from or action.group.fingerprint
        channel, algorithm = self.subscription.channel_id, self.subscription.algorithm
        threads = await self.store.alert_threads(channel, algorithm, [key])
        current = next((t for t in threads if t.fingerprint == key), None)
        if current is None:
            return action
        if action.adopted_from is not None:  # not re-keyed yet: this group still adopts it
            current = replace(
                current, fingerprint=action.group.fingerprint, previous_fingerprint=key
            )
        return known_action(action.group, current, self.now, adopted_from=action.adopted_from)

    async def _carry_out(self, action: DigestAction) -> None:
        if action.kind is Kind.NEW_ALERT:  # its intent checks the lease
            await self._new_alert(action, exists=False)
            return
        if action.adopted_from is not None or not action.replies:  # no intent comes first
            await self.lease.renew()
        # Re-keyed before the parent is edited, so its new buttons find the thread; only one
        # worker can (the others lost their lease meanwhile).
        if action.adopted_from is not None and not await self.store.adopt_alert_thread(
            action.thread
        ):
            raise LeaseLost
        intent = None
        if action.replies:
            intent = self._intent(
                PostKind.NEWS, action.group.fingerprint, action.group,
                thread_ts=action.thread.parent_ts,
            )  # fmt: skip
            await self._record(intent)
        await self.notifier.thread_news(
            action, intent.id if intent else None, notify=self.subscription.notify
        )
        await self._record_news(action)
        if intent is not None:
            await self.store.settle_intent(intent.id)

    async def _record_news(self, action: DigestAction) -> None:
        await self.store.update_alert_thread(action.thread, fields=ALERT_COUNTERS)
        if action.kind is Kind.REGRESSION or action.mute_ended:
            # Only if no click changed its state since the plan read it (the post may have
            # waited minutes for its turn): the click stands.
            await self.store.update_alert_thread(
                action.thread, fields=ALERT_STATE, expected=action.read
            )
        await self.store.mark_reported(self.subscription.id, action.reported, self.now)

    async def _new_alert(self, action: DigestAction, *, exists: bool) -> None:
        """Post the alert, keep its `ts`, count its records reported, then its first reply
        (its own intent: if Slack refuses it now, a later run posts it)."""
        intent = self._intent(PostKind.ALERT, action.thread.fingerprint, action.group)
        await self._record(intent)
        channel = self.subscription.channel_id
        parent_ts = await self.notifier.new_alert(
            channel, action.thread, intent.id, notify=self.subscription.notify
        )
        thread = replace(action.thread, parent_ts=parent_ts)
        if exists:  # an alert posted again for a deleted one: its news and state too
            fields = ("parent_ts", *ALERT_COUNTERS, *ALERT_STATE)
            await self.store.update_alert_thread(thread, fields=fields)
        else:
            await self.store.create_alert_thread(thread)
        await self.store.mark_reported(self.subscription.id, action.reported, self.now)
        trace = self._intent(PostKind.TRACE, thread.fingerprint, action.group, thread_ts=parent_ts)
        recorded = await self.store.settle_intent(intent.id, then=trace)
        await self._post_trace(trace, action.group, action, recorded=recorded)
        if not recorded:  # unsubscribed, or taken over and adopted by another worker (only
            # if this run's guard failed it): the alert has its trace, best effort; the run stops
            raise LeaseLost

    async def _post_trace(
        self,
        intent: PostIntent,
        group: ErrorGroup,
        action: DigestAction | None,
        *,
        again: bool = False,
        recorded: bool = True,
    ) -> None:
        """The trace reply of `intent`; settled once Slack took it (`recorded`: the intent
        is in the store; when not, the reply is still sent, once, best effort)."""
        assert intent.thread_ts is not None  # a trace intent is always a reply
        split_from = action.split_from if action is not None else None
        posted = await self.notifier.first_reply(
            intent.channel_id, intent.thread_ts, group, split_from, intent.id, again=again
        )
        if not recorded:
            return
        if posted:
            await self.store.settle_intent(intent.id)
        else:
            self.unconfirmed += 1

    async def _record(self, intent: PostIntent) -> None:
        """Record the intent of a post about to go, which checks the lease."""
        self.lease.check()
        if not await self.store.record_intent(intent, self.lease.worker):
            raise LeaseLost  # taken over or unsubscribed while the run was going: say no more

    def _intent(
        self, kind: PostKind, fingerprint: str, group: ErrorGroup, *, thread_ts: str | None = None
    ) -> PostIntent:
        return PostIntent(
            id=uuid.uuid4().hex,
            subscription_id=self.subscription.id,
            kind=kind,
            channel_id=self.subscription.channel_id,
            algorithm=self.subscription.algorithm,
            fingerprint=fingerprint,
            thread_ts=thread_ts,
            request_ids=group.request_ids,
            created_at=self.clock(),
        )


API_WINDOW = timedelta(seconds=API_WINDOW_SECONDS)


def _reported(group: ErrorGroup) -> list[tuple[str, int]]:
    return [(o.record.request_id, o.record.created_at) for o in group.occurrences]
