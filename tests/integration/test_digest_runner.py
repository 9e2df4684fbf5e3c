"""Digest runs against the real store (SQLite), a fake cluster and a recording notifier."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event

from bot.algorithmia.client import AlgorithmInfo
from bot.algorithmia.exceptions import Unavailable
from bot.digest.plan import DigestAction, Kind
from bot.domain.alerts import (
    ALERT_STATE,
    AlertState,
    AlertThread,
    PendingNotice,
    PostIntent,
    PostKind,
    RunOutcome,
    Subscription,
)
from bot.domain.algorithm_ref import AlgorithmRef, OwnerName
from bot.domain.commands import Subscribe
from bot.domain.schedule import Daily
from bot.errors.grouping import ErrorGroup
from bot.errors.records import ErrorRecord, RecordBatch, read_records
from bot.store.exceptions import StoreUnavailable
from bot.usecases.digest import LeaseExpiring, _Lease, run_digests
from bot.usecases.digest_ports import AlertGone, ChannelGone, LeaseLost
from bot.usecases.results import LookupFailure
from bot.usecases.subscriptions import subscribe
from tests.store_probe import ProbedStore as Store

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
ACME = OwnerName("acme", "image_tagger")


class FakeCluster:
    def __init__(self) -> None:
        self.records: dict[str, list[ErrorRecord]] = {}
        self.down: set[str] = set()
        self.fetches: list[str] = []

    async def list_errors(self, ref: AlgorithmRef) -> RecordBatch:
        self.fetches.append(str(ref))
        if str(ref) in self.down:
            raise Unavailable("cluster answered 503")
        return RecordBatch(tuple(self.records.get(str(ref), [])))

    async def get_algorithm(self, ref: OwnerName) -> AlgorithmInfo:
        return AlgorithmInfo(id="x", name=ref.name)


class RecordingNotifier:
    """Says what a digest posts, and holds what was posted under each intent, as Slack does
    in the metadata of its messages."""

    def __init__(self) -> None:
        self.said: list[tuple[str, ...]] = []
        self.gone: set[str] = set()
        self.posted: dict[str, str] = {}
        """Intent id → the `ts` of the message tagged with it."""
        self._ts = 0

    def _check(self, channel: str) -> None:
        if channel in self.gone:
            raise ChannelGone("channel_not_found")

    async def new_alert(
        self, channel_id: str, thread: AlertThread, intent_id: str, **_: object
    ) -> str:
        self._check(channel_id)
        self._ts += 1
        self.said.append(("alert", channel_id, thread.fingerprint))
        self.posted[intent_id] = f"{self._ts}.0"
        return f"{self._ts}.0"

    async def first_reply(
        self, channel_id: str, parent_ts: str, group: ErrorGroup,
        split_from: AlertThread | None, intent_id: str, *, again: bool = False,
    ) -> bool:  # fmt: skip
        if again and intent_id in self.posted:
            return True
        self.said.append(("first_reply", channel_id, parent_ts))
        self.posted[intent_id] = parent_ts
        if split_from is not None:
            self.said.append(("split_from", channel_id, split_from.fingerprint))
        return True

    async def thread_news(self, action: DigestAction, intent_id: str | None, **_: object) -> None:
        self._check(action.thread.channel_id)
        self.said.append((action.kind.value, action.thread.channel_id, action.group.fingerprint))
        if intent_id is not None:
            self.posted[intent_id] = action.thread.parent_ts

    async def find_post(self, intent: PostIntent) -> str | None:
        return self.posted.get(intent.id)

    async def mute_over(self, thread: AlertThread) -> bool:
        self.said.append(("mute_over", thread.channel_id, thread.fingerprint))
        return True

    async def refresh(self, thread: AlertThread) -> None:
        self.said.append(("refresh", thread.channel_id, thread.fingerprint, thread.state.value))

    async def outage(
        self, subscription: Subscription, failure: LookupFailure, notice_id: str
    ) -> None:
        self.said.append(("outage", subscription.channel_id, failure.detail or failure.kind))
        self.posted[notice_id] = "notice"

    async def recovered(self, subscription: Subscription, notice_id: str) -> None:
        self.said.append(("recovered", subscription.channel_id))
        self.posted[notice_id] = "notice"

    async def find_notice(self, channel_id: str, notice: PendingNotice) -> bool:
        return notice.id in self.posted

    def kinds(self) -> list[str]:
        return [entry[0] for entry in self.said]


def _record(i: int, error: str, minutes_ago: int = 0) -> ErrorRecord:
    created = int((T0 - timedelta(minutes=minutes_ago)).timestamp() * 1000)
    return ErrorRecord(created_at=created, request_id=f"req-{i}", error=error)


BOOM = "error:\nboom\nstacktrace:\nNone"
BANG = "error:\nbang\nstacktrace:\nNone"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(f"sqlite:///{tmp_path / 'bot.db'}") as opened:
        yield opened


async def _subscribe(store: Store, cluster: FakeCluster, channel: str = "C1",
                     ref: OwnerName = ACME) -> Subscription:  # fmt: skip
    done = await subscribe(store, cluster, Subscribe(ref), channel_id=channel, user_id="U1",
                           user_timezone=None, now=T0)  # fmt: skip
    return done.subscription


async def _run(store: Store, cluster: FakeCluster, notifier: RecordingNotifier,
               at: datetime, **kwargs: Any) -> Any:  # fmt: skip
    return await run_digests(store, cluster, notifier, now=at, worker="w1", **kwargs)


async def _failing_runs(
    store: Store, cluster: FakeCluster, notifier: RecordingNotifier, runs: int = 2
) -> datetime:
    """The sample algorithm's cluster down for `runs` runs a quarter of an hour apart, from
    T0 + 15 minutes (two: the next failure is the one told); the time of the run after."""
    cluster.down.add("acme/image_tagger")
    at = T0 + timedelta(minutes=15)
    for _ in range(runs):
        await _run(store, cluster, notifier, at, everything=True)
        at += timedelta(minutes=15)
    return at


async def _thread(store: Store, fingerprint: str) -> AlertThread:
    """C1's alert thread of the sample algorithm under `fingerprint`, which must exist."""
    found = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
    assert found is not None
    return found


async def test_first_digest_posts_only_errors_newer_than_the_subscription(store: Store) -> None:
    cluster, notifier = FakeCluster(), RecordingNotifier()
    cluster.records["acme/image_tagger"] = [_record(1, BOOM, 30)]
    await _subscribe(store, cluster)
    report = await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    assert notifier.said == []
    assert len(report.ran) == 1
    cluster.records["acme/image_tagger"] += [_record(2, BANG, 1), _record(3, BOOM, 2)]
    await _run(store, cluster, notifier, T0 + timedelta(minutes=30))
    assert notifier.kinds() == ["alert", "first_reply", "alert", "first_reply"]
    # nothing new: nothing posted
    await _run(store, cluster, notifier, T0 + timedelta(minutes=45))
    assert len(notifier.said) == 4


async def test_recurrence_regression_and_mute(store: Store) -> None:
    cluster, notifier = FakeCluster(), RecordingNotifier()
    sub = await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    fingerprint = notifier.said[0][2]
    cluster.records["acme/image_tagger"].append(_record(2, BOOM))
    await _run(store, cluster, notifier, T0 + timedelta(minutes=30))
    assert notifier.said[-1] == ("recurrence", "C1", fingerprint)
    thread = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
    assert thread is not None
    assert thread.count == 2
    await store.update_alert_thread(replace(thread, state=AlertState.RESOLVED))
    cluster.records["acme/image_tagger"].append(_record(3, BOOM))
    await _run(store, cluster, notifier, T0 + timedelta(minutes=45))
    assert notifier.said[-1] == ("regression", "C1", fingerprint)
    regressed = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
    assert regressed is not None
    assert regressed.state is AlertState.REGRESSED
    await store.update_alert_thread(replace(regressed, state=AlertState.MUTED, muted_until=None))
    cluster.records["acme/image_tagger"].append(_record(4, BOOM))
    await _run(store, cluster, notifier, T0 + timedelta(minutes=60))
    assert notifier.said[-1] == (Kind.MUTED.value, "C1", fingerprint)
    assert await store.unreported(sub.id, ["req-1", "req-2", "req-3", "req-4"]) == set()


async def test_each_algorithm_is_fetched_once_per_run(store: Store) -> None:
    cluster, notifier = FakeCluster(), RecordingNotifier()
    for channel in ("C1", "C2", "C3"):
        await _subscribe(store, cluster, channel)
    await _subscribe(store, cluster, "C1", OwnerName("acme", "other"))
    cluster.fetches.clear()
    await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    assert sorted(cluster.fetches) == ["acme/image_tagger", "acme/other"]


async def test_one_failing_algorithm_does_not_stop_another_and_outages_are_told_once(
    store: Store,
) -> None:
    cluster, notifier = FakeCluster(), RecordingNotifier()
    await _subscribe(store, cluster, "C1")
    await _subscribe(store, cluster, "C2", OwnerName("acme", "other"))
    cluster.down.add("acme/image_tagger")
    cluster.records["acme/other"] = [_record(1, BOOM)]
    at = T0 + timedelta(minutes=15)
    for run in range(5):
        report = await _run(store, cluster, notifier, at, everything=True)
        at += timedelta(minutes=15)
        other = cluster.records["acme/other"]
        other.append(_record(len(other) + 1, BANG if run % 2 else BOOM))
    assert notifier.kinds().count("outage") == 1
    assert next(e for e in notifier.said if e[0] == "outage")[1] == "C1"
    assert "alert" in notifier.kinds()  # the other algorithm's digest still posted
    assert len(report.failed) == 1
    cluster.down.clear()
    await _run(store, cluster, notifier, at, everything=True)
    await _run(store, cluster, notifier, at + timedelta(minutes=15), everything=True)
    assert notifier.kinds().count("recovered") == 1


class _DiesAfterSlackTookTheNotice(RecordingNotifier):
    """Slack keeps each notice, and the process dies before hearing so."""

    async def outage(
        self, subscription: Subscription, failure: LookupFailure, notice_id: str
    ) -> None:
        await super().outage(subscription, failure, notice_id)
        raise asyncio.CancelledError

    async def recovered(self, subscription: Subscription, notice_id: str) -> None:
        await super().recovered(subscription, notice_id)
        raise asyncio.CancelledError


async def test_notices_slack_took_before_a_crash_are_not_told_twice(store: Store) -> None:
    """§3.2: one notice of the outage and one of the recovery, also when the process dies
    between each notice's post and its confirmation."""
    cluster, notifier = FakeCluster(), RecordingNotifier()
    subscription = await _subscribe(store, cluster)
    at = await _failing_runs(store, cluster, notifier)
    dying = _DiesAfterSlackTookTheNotice()
    dying.posted = notifier.posted  # one Slack
    with pytest.raises(asyncio.CancelledError):
        await _run(store, cluster, dying, at, everything=True)  # the third failure: told
    assert dying.kinds() == ["outage"]
    for _ in range(2):  # the lease runs out; still down: the notice is found, not told again
        at += timedelta(minutes=15)
        await _run(store, cluster, notifier, at, everything=True)
    assert notifier.kinds() == []
    current = await store.get_subscription(subscription.id)
    assert current is not None
    assert (current.outage_notified, current.pending_notice) == (True, None)
    cluster.down.clear()
    at += timedelta(minutes=15)
    with pytest.raises(asyncio.CancelledError):
        await _run(store, cluster, dying, at, everything=True)
    assert dying.kinds() == ["outage", "recovered"]
    for _ in range(2):
        at += timedelta(minutes=15)
        await _run(store, cluster, notifier, at, everything=True)
    assert notifier.kinds() == []  # the recovery was found too
    current = await store.get_subscription(subscription.id)
    assert current is not None
    assert (current.outage_notified, current.pending_notice) == (False, None)


async def test_no_notice_is_posted_once_the_process_is_stopping(store: Store) -> None:
    """SIGTERM while the third failing run waits on the cluster: its notice is left to the
    next run (of any worker), like any post."""
    stop = False

    class StoppedDuringTheFetch(FakeCluster):
        async def list_errors(self, ref: AlgorithmRef) -> RecordBatch:
            nonlocal stop
            if len(self.fetches) == 2:  # the third run's fetch
                stop = True
            return await super().list_errors(ref)

    cluster, notifier = StoppedDuringTheFetch(), RecordingNotifier()
    await _subscribe(store, cluster)
    cluster.fetches.clear()  # subscribing fetched once
    cluster.down.add("acme/image_tagger")
    at = T0 + timedelta(minutes=15)
    for _ in range(3):
        await _run(store, cluster, notifier, at, everything=True, stopping=lambda: stop)
        at += timedelta(minutes=15)
    assert notifier.kinds() == []
    stop = False
    await _run(store, cluster, notifier, at, everything=True)
    assert notifier.kinds() == ["outage"]  # told by the next run


async def test_a_notice_that_never_reached_slack_is_told_by_the_next_run(store: Store) -> None:
    class DiesBeforeTheNotice(RecordingNotifier):
        async def outage(
            self, subscription: Subscription, failure: LookupFailure, notice_id: str
        ) -> None:
            raise asyncio.CancelledError  # killed with the notice recorded, nothing sent

    cluster, notifier = FakeCluster(), RecordingNotifier()
    await _subscribe(store, cluster)
    at = await _failing_runs(store, cluster, notifier)
    with pytest.raises(asyncio.CancelledError):
        await _run(store, cluster, DiesBeforeTheNotice(), at, everything=True)
    for _ in range(2):
        at += timedelta(minutes=15)
        await _run(store, cluster, notifier, at, everything=True)
    assert notifier.kinds() == ["outage"]  # told once, by the run after the crash


async def test_a_gone_channel_pauses_the_subscription(store: Store) -> None:
    cluster, notifier = FakeCluster(), RecordingNotifier()
    sub = await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    notifier.gone.add("C1")
    report = await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    assert "channel_not_found" in report.failed[sub.id]
    paused = await store.get_subscription(sub.id)
    assert paused is not None
    assert paused.paused_reason == "channel_not_found"
    assert await store.due_subscriptions(T0 + timedelta(days=1)) == []
    assert await store.unreported(sub.id, ["req-1"]) == {"req-1"}  # nothing counted as said


async def test_two_runners_at_once_never_post_twice(store: Store) -> None:
    cluster, notifier = FakeCluster(), RecordingNotifier()
    await _subscribe(store, cluster)
    kinds = [f"error:\nkind {chr(65 + i)}\nstacktrace:\nNone" for i in range(10)]
    cluster.records["acme/image_tagger"] = [_record(i, kind) for i, kind in enumerate(kinds)]
    at = T0 + timedelta(minutes=15)
    await asyncio.gather(
        run_digests(store, cluster, notifier, now=at, worker="serve"),
        run_digests(store, cluster, notifier, now=at, worker="once"),
    )
    assert notifier.kinds().count("alert") == 10


class FlakyNotifier(RecordingNotifier):
    """A notifier whose calls can fail or act (a click, an unsubscribe) at chosen moments."""

    def __init__(self) -> None:
        super().__init__()
        self.reply_fails = False
        self.on_alert: Any = None
        self.deleted: set[str] = set()

    async def new_alert(
        self, channel_id: str, thread: AlertThread, intent_id: str, **_: object
    ) -> str:
        ts = await super().new_alert(channel_id, thread, intent_id)
        if self.on_alert is not None:
            await self.on_alert()
        return ts

    async def first_reply(
        self, channel_id: str, parent_ts: str, group: ErrorGroup,
        split_from: AlertThread | None, intent_id: str, *, again: bool = False,
    ) -> bool:  # fmt: skip
        if self.reply_fails:
            raise RuntimeError("a bug after the alert was posted")
        return await super().first_reply(
            channel_id, parent_ts, group, split_from, intent_id, again=again
        )

    async def thread_news(self, action: DigestAction, intent_id: str | None, **_: object) -> None:
        if action.thread.parent_ts in self.deleted:
            raise AlertGone("thread_not_found")
        await super().thread_news(action, intent_id)


async def test_a_failed_first_reply_is_posted_by_the_next_run_never_the_alert_again(
    store: Store,
) -> None:
    cluster, notifier = FakeCluster(), FlakyNotifier()
    await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    notifier.reply_fails = True
    first = await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    assert "RuntimeError: a bug after the alert was posted" in next(iter(first.failed.values()))
    notifier.reply_fails = False
    report = await _run(store, cluster, notifier, T0 + timedelta(minutes=30))
    assert notifier.kinds() == ["alert", "first_reply"]  # the trace, in the alert's thread
    assert notifier.said[1][2] == "1.0"
    assert report.posted == 0  # nothing new was planned: no second alert, no recurrence
    thread = await store.find_alert_thread("C1", "acme/image_tagger", notifier.said[0][2])
    assert thread is not None
    assert thread.count == 1
    await _run(store, cluster, notifier, T0 + timedelta(minutes=45))
    assert notifier.kinds() == ["alert", "first_reply"]  # settled: said once


class _DiesAfterSlackTookTheAlert(RecordingNotifier):
    async def new_alert(
        self, channel_id: str, thread: AlertThread, intent_id: str, **_: object
    ) -> str:
        await super().new_alert(channel_id, thread, intent_id)  # Slack keeps it …
        raise asyncio.CancelledError  # … and the process dies before its answer


async def test_a_post_slack_holds_is_adopted_after_a_crash_never_posted_again(
    store: Store,
) -> None:
    cluster, notifier = FakeCluster(), RecordingNotifier()
    subscription = await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    dying = _DiesAfterSlackTookTheAlert()
    with pytest.raises(asyncio.CancelledError):
        await _run(store, cluster, dying, T0 + timedelta(minutes=15))
    assert dying.kinds() == ["alert"]
    notifier.posted = dying.posted  # the same Slack, seen by the next run
    report = await _run(store, cluster, notifier, T0 + timedelta(minutes=30), everything=True)
    assert notifier.kinds() == ["first_reply"]  # the trace reply; the alert was adopted
    assert report.failed == {}
    (thread,) = await store.alert_threads("C1", "acme/image_tagger", [dying.said[0][2]])
    assert thread.parent_ts == "1.0"
    assert await store.unreported(subscription.id, ["req-1"]) == set()
    await _run(store, cluster, notifier, T0 + timedelta(minutes=45), everything=True)
    assert notifier.kinds() == ["first_reply"]  # nothing more


async def test_a_post_that_never_reached_slack_is_posted_by_the_next_run(store: Store) -> None:
    class DiesBeforePosting(RecordingNotifier):
        async def new_alert(
            self, channel_id: str, thread: AlertThread, intent_id: str, **_: object
        ) -> str:
            raise asyncio.CancelledError  # killed with the intent recorded, nothing sent

    cluster, notifier = FakeCluster(), RecordingNotifier()
    await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    with pytest.raises(asyncio.CancelledError):
        await _run(store, cluster, DiesBeforePosting(), T0 + timedelta(minutes=15))
    await _run(store, cluster, notifier, T0 + timedelta(minutes=30), everything=True)
    assert notifier.kinds() == ["alert", "first_reply"]


async def test_unsubscribing_during_a_run_stops_it(store: Store) -> None:
    cluster, notifier = FakeCluster(), FlakyNotifier()
    await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM), _record(2, BANG)]

    async def unsubscribe() -> None:
        await store.remove_subscription("C1", "acme/image_tagger")

    notifier.on_alert = unsubscribe
    report = await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    assert notifier.kinds() == ["alert", "first_reply"]  # the second kind is not posted
    assert report.failed == {}


@pytest.mark.parametrize("news", [False, True], ids=["new alert", "recurrence"])
async def test_a_run_whose_lease_was_taken_over_records_no_intent_and_posts_nothing(
    store: Store, news: bool
) -> None:
    """Between the claim and the first post (here while the cluster answers) the lease ran out
    and another worker claimed the subscription: the run's intent is refused, so it posts
    nothing, and the lease stays the other worker's."""
    cluster, notifier = FakeCluster(), RecordingNotifier()
    subscription = await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    if news:  # the alert is known: the news are a reply in its thread
        await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
        notifier.said.clear()
        cluster.records["acme/image_tagger"].append(_record(2, BOOM))
    at = T0 + timedelta(minutes=30)
    fetch = cluster.list_errors

    async def taken_over_meanwhile(ref: AlgorithmRef) -> RecordBatch:
        assert await store.claim(subscription.id, "w2", at + timedelta(minutes=5), 60)
        return await fetch(ref)

    cluster.list_errors = taken_over_meanwhile  # type: ignore[method-assign]
    report = await _run(store, cluster, notifier, at)
    assert notifier.said == []
    assert (await store.open_intents([subscription.id]))[subscription.id] == []
    assert report.failed == {}
    (run, *_) = await store.recent_digest_runs(subscription.id, 1)
    assert run.outcome is RunOutcome.LEASE_LOST
    told = "req-2" if news else "req-1"
    assert await store.unreported(subscription.id, [told]) == {told}  # left to w2
    assert not await store.claim(subscription.id, "w3", at + timedelta(minutes=5), 60)  # w2's


async def test_a_click_during_the_run_is_kept(store: Store) -> None:
    cluster, notifier = FakeCluster(), FlakyNotifier()
    await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    fingerprint = notifier.said[0][2]

    async def resolve() -> None:  # someone clicks Resolve while the run posts another alert
        thread = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
        assert thread is not None
        await store.update_alert_thread(
            replace(thread, state=AlertState.RESOLVED, state_changed_by="U9"), fields=ALERT_STATE
        )

    notifier.on_alert = resolve
    cluster.records["acme/image_tagger"] += [_record(2, BANG, 2), _record(3, BOOM, 1)]
    await _run(store, cluster, notifier, T0 + timedelta(minutes=30))
    assert notifier.said[-1] == ("regression", "C1", fingerprint)  # it saw the click
    thread = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
    assert thread is not None
    assert (thread.count, thread.state) == (2, AlertState.REGRESSED)


async def test_a_broken_subscription_does_not_stop_the_run_or_keep_its_lease(
    store: Store,
) -> None:
    cluster, notifier = FakeCluster(), RecordingNotifier()
    good = await _subscribe(store, cluster, "C1")
    bad = await store.upsert_subscription(
        "C2", "acme/image_tagger", "daily:09:00", "Mars/Olympus", "U1", T0, T0
    )
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    at = T0 + timedelta(minutes=15)
    report = await _run(store, cluster, notifier, at)
    assert good.id in report.ran
    assert "Mars/Olympus" in report.failed[bad.id]
    assert "alert" in notifier.kinds()
    assert await store.claim(bad.id, "w2", at + timedelta(minutes=5), 60)  # lease released


async def test_news_of_a_deleted_alert_get_a_new_alert(store: Store) -> None:
    cluster, notifier = FakeCluster(), FlakyNotifier()
    await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    fingerprint = notifier.said[0][2]
    first = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
    assert first is not None
    notifier.deleted.add(first.parent_ts)
    cluster.records["acme/image_tagger"].append(_record(2, BOOM))
    await _run(store, cluster, notifier, T0 + timedelta(minutes=30))
    assert notifier.kinds() == ["alert", "first_reply", "alert", "first_reply"]
    again = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
    assert again is not None
    assert again.parent_ts != first.parent_ts
    assert again.count == 2


async def test_a_mute_ends_by_itself_and_the_next_run_shows_it(store: Store) -> None:
    cluster, notifier = FakeCluster(), RecordingNotifier()
    await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    fingerprint = notifier.said[0][2]
    thread = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
    assert thread is not None
    until = T0 + timedelta(hours=1)
    await store.update_alert_thread(
        replace(thread, state=AlertState.MUTED, muted_until=until), fields=ALERT_STATE
    )
    await _run(store, cluster, notifier, until - timedelta(minutes=1))
    assert notifier.said[-1][0] == "first_reply"  # still muted: nothing
    await _run(store, cluster, notifier, until + timedelta(minutes=16))  # the next due run
    assert notifier.said[-1] == ("mute_over", "C1", fingerprint)
    opened = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
    assert opened is not None
    assert (opened.state, opened.muted_until) == (AlertState.OPEN, None)


async def _muted_until(store: Store, cluster: FakeCluster, notifier: RecordingNotifier,
                      until: datetime) -> str:  # fmt: skip
    """An alert of BOOM in C1, muted until `until`; its fingerprint."""
    await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    fingerprint = notifier.said[0][2]
    thread = await _thread(store, fingerprint)
    await store.update_alert_thread(
        replace(thread, state=AlertState.MUTED, muted_until=until), fields=ALERT_STATE
    )
    return fingerprint


async def test_a_mute_end_the_process_was_killed_before_showing_is_shown_by_the_next_run(
    store: Store,
) -> None:
    class DiesBeforeTheEdit(RecordingNotifier):
        async def mute_over(self, thread: AlertThread) -> bool:
            raise asyncio.CancelledError  # killed before Slack got the edit

    cluster, notifier = FakeCluster(), RecordingNotifier()
    until = T0 + timedelta(hours=1)
    fingerprint = await _muted_until(store, cluster, notifier, until)
    with pytest.raises(asyncio.CancelledError):
        await _run(store, cluster, DiesBeforeTheEdit(), until + timedelta(minutes=16))
    await _run(store, cluster, notifier, until + timedelta(minutes=31), everything=True)
    assert notifier.said[-1] == ("mute_over", "C1", fingerprint)  # the alert no longer says muted
    opened = await _thread(store, fingerprint)
    assert (opened.state, opened.muted_until) == (AlertState.OPEN, None)


async def test_a_mute_end_slack_failed_to_show_is_shown_by_a_later_run(store: Store) -> None:
    class SlackInTroubleOnce(RecordingNotifier):
        failed = False

        async def mute_over(self, thread: AlertThread) -> bool:
            if not self.failed:
                self.failed = True
                return False  # a 5xx on chat.update: the alert still says muted
            return await super().mute_over(thread)

    cluster, notifier = FakeCluster(), SlackInTroubleOnce()
    until = T0 + timedelta(hours=1)
    fingerprint = await _muted_until(store, cluster, notifier, until)
    await _run(store, cluster, notifier, until + timedelta(minutes=16))
    thread = await _thread(store, fingerprint)
    assert thread.state is AlertState.MUTED  # not written: the alert would contradict it
    await _run(store, cluster, notifier, until + timedelta(minutes=31))
    assert notifier.said[-1] == ("mute_over", "C1", fingerprint)
    opened = await _thread(store, fingerprint)
    assert opened.state is AlertState.OPEN


async def test_a_click_while_a_mute_end_is_shown_stands_and_the_alert_shows_it(
    store: Store,
) -> None:
    class ResolvedMeanwhile(RecordingNotifier):
        async def mute_over(self, thread: AlertThread) -> bool:
            await super().mute_over(thread)
            found = await _thread(store, thread.fingerprint)  # resolved while Slack edits
            await store.update_alert_thread(
                replace(found, state=AlertState.RESOLVED, muted_until=None), fields=ALERT_STATE
            )
            return True

    cluster, notifier = FakeCluster(), ResolvedMeanwhile()
    until = T0 + timedelta(hours=1)
    fingerprint = await _muted_until(store, cluster, notifier, until)
    await _run(store, cluster, notifier, until + timedelta(minutes=16))
    assert notifier.said[-2:] == [
        ("mute_over", "C1", fingerprint),
        ("refresh", "C1", fingerprint, "resolved"),  # the last edit shows what the click did
    ]
    thread = await _thread(store, fingerprint)
    assert thread.state is AlertState.RESOLVED


async def test_a_run_that_cannot_reach_the_cluster_is_retried_before_its_next_time(
    store: Store,
) -> None:
    cluster, notifier = FakeCluster(), RecordingNotifier()
    sub = await _subscribe(store, cluster)
    cluster.down.add("acme/image_tagger")
    at = T0 + timedelta(minutes=15)
    await _run(store, cluster, notifier, at)
    retried = await store.get_subscription(sub.id)
    assert retried is not None
    assert retried.next_run_at == at + timedelta(minutes=1)  # not at +15 minutes
    assert retried.consecutive_failures == 1


async def test_a_bug_is_never_counted_as_the_cluster_s_fault(store: Store) -> None:
    class BuggySource(FakeCluster):
        async def list_errors(self, ref: AlgorithmRef) -> RecordBatch:
            raise TypeError("a bug in the bot")

    cluster, notifier = FakeCluster(), RecordingNotifier()
    subscription = await _subscribe(store, cluster)
    buggy = BuggySource()
    for minutes in (15, 30, 45, 60):  # more runs than it takes to tell of an outage
        report = await _run(store, buggy, notifier, T0 + timedelta(minutes=minutes))
        assert "TypeError: a bug in the bot" in report.failed[subscription.id]
    assert notifier.said == []  # no "cluster unreachable" notice in the channel
    current = await store.get_subscription(subscription.id)
    assert current is not None
    assert (current.consecutive_failures, current.outage_notified) == (0, False)
    runs = await store.recent_digest_runs(subscription.id, 1)
    assert runs[0].outcome is RunOutcome.ERROR


async def test_an_outage_notice_slack_refuses_still_counts_the_outage(store: Store) -> None:
    class GoneAtTheNotice(RecordingNotifier):
        async def outage(
            self, subscription: Subscription, failure: LookupFailure, notice_id: str
        ) -> None:
            raise ChannelGone("channel_not_found")

    cluster, notifier = FakeCluster(), GoneAtTheNotice()
    subscription = await _subscribe(store, cluster)
    at = await _failing_runs(store, cluster, notifier)
    # The third failure's notice finds the channel gone.
    report = await _run(store, cluster, notifier, at, everything=True)
    assert "channel_not_found" in report.failed[subscription.id]
    current = await store.get_subscription(subscription.id)
    assert current is not None
    assert current.paused_reason == "channel_not_found"
    assert current.consecutive_failures == 3  # the outage is still counted, not reset


async def test_a_bug_outside_a_subscription_s_run_still_ends_its_lease(store: Store) -> None:
    class BrokenAfterFetch(FakeCluster):
        async def list_errors(self, ref: AlgorithmRef) -> RecordBatch:
            raise KeyError("a bug in the bot")

    cluster = FakeCluster()
    good = await _subscribe(store, cluster, "C1")
    odd = await store.upsert_subscription(
        "C2", "acme/other", "daily:09:00", "Mars/Olympus", "U1", T0, T0
    )  # a zone that cannot be loaded any more
    at = T0 + timedelta(minutes=15)
    report = await _run(store, BrokenAfterFetch(), RecordingNotifier(), at, everything=True)
    assert set(report.failed) == {good.id, odd.id}
    assert all("KeyError" in reason for reason in report.failed.values())
    for subscription in (good, odd):  # leases ended: another worker may take them at once
        assert await store.claim(subscription.id, "w2", at, 60, force=True)


async def test_a_long_run_keeps_its_leases_with_a_heartbeat(store: Store) -> None:
    class SlowNotifier(RecordingNotifier):
        async def new_alert(
            self, channel_id: str, thread: AlertThread, intent_id: str, **_: object
        ) -> str:
            await asyncio.sleep(1.0)  # Slack rate-limits us: longer than a lease
            return await super().new_alert(channel_id, thread, intent_id)

    cluster = FakeCluster()
    await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    run = asyncio.create_task(
        run_digests(
            store, cluster, SlowNotifier(), now=datetime.now(UTC), worker="w1",
            everything=True, lease_seconds=0.3,
        )
    )  # fmt: skip
    await asyncio.sleep(0.6)  # two leases long
    assert await store.claim_due("w2", datetime.now(UTC), 60, everything=True) == []
    report = await run
    assert report.failed == {}
    # Ended with the run: the next worker takes it at once.
    assert await store.claim_due("w2", datetime.now(UTC), 60, everything=True)


async def test_a_run_that_cannot_renew_its_lease_stops_posting_before_it_runs_out(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database goes away while a post waits its turn (Slack's pace, a 429): the post is
    abandoned before the lease can run out, so a worker taking the subscription over after
    that finds in Slack all this run will ever post, and nothing arrives twice."""
    posted: list[float] = []

    class StuckNotifier(RecordingNotifier):
        async def new_alert(
            self, channel_id: str, thread: AlertThread, intent_id: str, **_: object
        ) -> str:
            down.set()  # the database goes away while this post waits
            await asyncio.sleep(2.0)  # waiting its turn, far beyond the lease
            posted.append(time.monotonic())  # would reach Slack only now
            return await super().new_alert(channel_id, thread, intent_id)

    cluster = FakeCluster()
    subscription = await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    renew = store.renew_leases
    down = asyncio.Event()

    async def renew_until_down(*args: Any, **kwargs: Any) -> Any:
        if down.is_set():
            raise StoreUnavailable("database unavailable: connection refused")
        return await renew(*args, **kwargs)

    monkeypatch.setattr(store, "renew_leases", renew_until_down)
    lease = 0.4
    report = await run_digests(
        store, cluster, StuckNotifier(), now=datetime.now(UTC), worker="w1",
        everything=True, lease_seconds=lease,
    )  # fmt: skip
    assert posted == []  # abandoned before its turn came, never sent
    assert report.failed == {}
    (intent,) = (await store.open_intents([subscription.id]))[subscription.id]
    assert intent.kind is PostKind.ALERT  # left open: whoever runs it next looks in Slack


async def test_a_dead_run_s_subscriptions_are_taken_over_when_its_lease_runs_out(
    store: Store,
) -> None:
    subscription = await _subscribe(store, FakeCluster())
    now = datetime.now(UTC)
    assert await store.claim_due("dead", now, 0.2, everything=True)  # then the process dies
    assert await store.claim_due("w2", now, 60, everything=True) == []
    await asyncio.sleep(0.3)
    (taken,) = await store.claim_due("w2", datetime.now(UTC), 60, everything=True)
    assert taken.id == subscription.id


async def test_what_could_not_be_posted_is_tried_at_the_next_ticks(store: Store) -> None:
    class SlackDown(RecordingNotifier):
        async def new_alert(
            self, channel_id: str, thread: AlertThread, intent_id: str, **_: object
        ) -> str:
            raise RuntimeError("Slack answered 500 three times")

    cluster = FakeCluster()
    done = await subscribe(
        store, cluster, Subscribe(ACME, Daily(9, 0)), channel_id="C1", user_id="U1",
        user_timezone=None, now=T0,
    )  # fmt: skip
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    at = T0 + timedelta(days=1)
    await _run(store, cluster, SlackDown(), at, everything=True)
    current = await store.get_subscription(done.subscription.id)
    assert current is not None
    assert current.next_run_at <= at + timedelta(minutes=1)  # not tomorrow at 09:00


async def test_a_recurrence_slack_holds_is_adopted_after_a_crash_counted_once(
    store: Store,
) -> None:
    class DiesAfterTheReply(RecordingNotifier):
        async def thread_news(
            self, action: DigestAction, intent_id: str | None, **_: object
        ) -> None:
            await super().thread_news(action, intent_id)  # Slack keeps the reply …
            raise asyncio.CancelledError  # … and the process dies before hearing back

    cluster, notifier = FakeCluster(), RecordingNotifier()
    subscription = await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    fingerprint = notifier.said[0][2]
    cluster.records["acme/image_tagger"].append(_record(2, BOOM))
    dying = DiesAfterTheReply()
    dying.posted = notifier.posted
    with pytest.raises(asyncio.CancelledError):
        await _run(store, cluster, dying, T0 + timedelta(minutes=30))
    assert dying.kinds() == ["recurrence"]
    await _run(store, cluster, notifier, T0 + timedelta(minutes=45), everything=True)
    assert notifier.kinds() == ["alert", "first_reply"]  # no second reply of the recurrence
    thread = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
    assert thread is not None
    assert thread.count == 2  # told once, counted once
    assert await store.unreported(subscription.id, ["req-2"]) == set()
    assert (await store.open_intents([subscription.id]))[subscription.id] == []


class StatementCounter:
    """Counts the statements the store sends to its database."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        event.listen(store.database.engine.sync_engine, "before_cursor_execute", self._counted)

    def _counted(self, *_: object) -> None:
        self.count += 1

    async def of(self, work: Any) -> int:
        """How many statements `await work` sends."""
        self.count = 0
        await work
        return self.count


async def _subscribed_everywhere(store: Store, cluster: FakeCluster, first: int, last: int) -> None:
    """Subscriptions `first`..`last - 1`, two channels of six each algorithm, the records of
    the algorithm all seen."""
    for number in range(first, last):
        ref = OwnerName("acme", f"algo_{number // 2}")
        cluster.records[str(ref)] = [_record(number // 2, BOOM, 5)]
        await _subscribe(store, cluster, channel=f"C{number % 6}", ref=ref)
    cluster.fetches.clear()  # subscribing read them


async def test_a_tick_with_none_due_costs_one_statement(database_url: str) -> None:
    async with await Store.open(database_url) as store:
        cluster, notifier = FakeCluster(), RecordingNotifier()
        await _subscribed_everywhere(store, cluster, 0, 40)
        counter = StatementCounter(store)
        await _run(store, cluster, notifier, T0 + timedelta(minutes=15))  # all of them ran
        cluster.fetches.clear()
        statements = await counter.of(_run(store, cluster, notifier, T0 + timedelta(minutes=16)))
        assert statements == 1
        assert cluster.fetches == []  # none due: nothing fetched


async def test_a_run_with_nothing_new_costs_as_many_statements_for_ten_times_the_subscriptions(
    database_url: str,
) -> None:
    async with await Store.open(database_url) as store:
        cluster, notifier = FakeCluster(), RecordingNotifier()
        counter = StatementCounter(store)
        await _subscribed_everywhere(store, cluster, 0, 12)
        await store.database.check_clock()  # PostgreSQL's, every 5 minutes: not a run's own
        few = await counter.of(_run(store, cluster, notifier, T0 + timedelta(minutes=15)))
        fetched = len(cluster.fetches)
        await _subscribed_everywhere(store, cluster, 12, 120)
        many = await counter.of(_run(store, cluster, notifier, T0 + timedelta(minutes=30)))
        assert notifier.said == []
        assert fetched == 6
        assert len(cluster.fetches) == 60  # each algorithm once
        assert many == few


async def test_a_run_reads_what_was_reported_a_window_at_a_time_and_misses_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows of three subscriptions (of 500 in production): every subscription still gets
    its new alert once, each algorithm is fetched once, and the next run says nothing again."""
    from bot.usecases import digest

    monkeypatch.setattr(digest, "REPORTED_WINDOW", 3)
    cluster, notifier = FakeCluster(), RecordingNotifier()
    await _subscribed_everywhere(store, cluster, 0, 20)  # 10 algorithms, 2 channels each
    for number in range(10):
        cluster.records[f"acme/algo_{number}"].append(_record(100 + number, BANG, 1))
    report = await _run(store, cluster, notifier, T0 + timedelta(minutes=15), concurrency=2)
    alerted = sorted(channel for kind, channel, _ in notifier.said if kind == "alert")
    assert alerted == sorted(f"C{number % 6}" for number in range(20))  # one per subscription
    assert sorted(cluster.fetches) == sorted(f"acme/algo_{n}" for n in range(10))
    assert (len(report.ran), report.failed) == (20, {})
    notifier.said.clear()
    await _run(store, cluster, notifier, T0 + timedelta(minutes=30), concurrency=2)
    assert notifier.said == []  # what was reported in every window is known as reported


async def test_a_window_of_subscriptions_ends_its_runs_while_later_windows_are_fetched(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runs of a window end (recorded, leases released) once its algorithms are done, not
    after the last answer of the whole run; each run ends once, however the windows finish,
    and one that could not end with its window ends with the run."""
    from bot.usecases import digest

    monkeypatch.setattr(digest, "REPORTED_WINDOW", 4)

    class SlowLast(FakeCluster):
        def __init__(self) -> None:
            super().__init__()
            self.answer_last = asyncio.Event()
            self.slow = False

        async def list_errors(self, ref: AlgorithmRef) -> RecordBatch:
            if self.slow and str(ref) == "acme/algo_5":
                await self.answer_last.wait()
            return await super().list_errors(ref)

    cluster, notifier = SlowLast(), RecordingNotifier()
    subscribed = []
    for number in range(12):  # 6 algorithms, 2 channels each: windows of 2 algorithms
        ref = OwnerName("acme", f"algo_{number // 2}")
        cluster.records[str(ref)] = [_record(number // 2, BOOM, 5)]
        subscribed.append(await _subscribe(store, cluster, channel=f"C{number % 2}", ref=ref))
    cluster.records["acme/algo_1"].append(_record(100, BANG, 1))  # the first window posts

    async def runs_of(subscription: Subscription) -> int:
        return len(await store.recent_digest_runs(subscription.id, 5))

    ending = store.finish_runs
    calls: list[int] = []
    ended: list[int] = []

    async def finish_runs(worker: str, runs: Any) -> None:
        calls.append(len(runs))
        if len(calls) == 2:  # the second window to end: the database blinked
            raise StoreUnavailable("database unreachable")
        await ending(worker, runs)
        ended.append(len(runs))

    monkeypatch.setattr(store, "finish_runs", finish_runs)
    cluster.slow = True
    running = asyncio.create_task(
        _run(store, cluster, notifier, T0 + timedelta(minutes=15), concurrency=2)
    )
    for _ in range(500):
        if len(calls) == 2 and len(ended) == 1:  # one window ended, the other could not
            break
        await asyncio.sleep(0.01)
    assert not running.done()  # the last algorithm has not answered
    # Of the first two windows, done in either order, one ended and one could not.
    assert sorted([await runs_of(s) for s in subscribed[:8]]) == [0] * 4 + [1] * 4
    assert [await runs_of(s) for s in subscribed[8:]] == [0] * 4
    assert notifier.kinds() == ["alert", "first_reply"] * 2
    assert await store.unreported(subscribed[2].id, ["req-100"]) == set()
    cluster.answer_last.set()
    report = await running
    assert (len(report.ran), report.failed) == (12, {})
    assert [await runs_of(s) for s in subscribed] == [1] * 12  # each once
    assert calls == [4, 4, 4, 4]  # three windows, then the run's end: the one that failed
    await _run(store, cluster, notifier, T0 + timedelta(minutes=30), concurrency=2)
    assert [await runs_of(s) for s in subscribed] == [2] * 12  # every lease was given back


async def _statements_of_a_posting_run(
    database_url: str, posting: int, records_per_bug: int, quiet: int
) -> tuple[int, int]:
    """`posting` subscriptions of one algorithm that has two new bugs of `records_per_bug`
    records each, beside `quiet` subscriptions with nothing new: the statements of the run
    and the posts it made."""
    async with await Store.open(database_url) as store:
        cluster, notifier = FakeCluster(), RecordingNotifier()
        await _subscribed_everywhere(store, cluster, 0, quiet)
        cluster.records["acme/image_tagger"] = []
        for channel in range(posting):
            await _subscribe(store, cluster, channel=f"CP{channel}")
        for number in range(records_per_bug):
            cluster.records["acme/image_tagger"] += [
                _record(1000 + number, BOOM, 1), _record(2000 + number, BANG, 1),
            ]  # fmt: skip
        counter = StatementCounter(store)
        statements = await counter.of(_run(store, cluster, notifier, T0 + timedelta(minutes=15)))
        assert notifier.kinds().count("alert") == 2 * posting
        return statements, len(notifier.said)


async def test_a_posting_run_costs_statements_per_post_not_per_record_or_quiet_subscription(
    tmp_path: Path,
) -> None:
    def url(name: str) -> str:
        return f"sqlite:///{tmp_path / name}"

    one, posts_one = await _statements_of_a_posting_run(url("a.db"), 1, 1, 0)
    crowded, posts_crowded = await _statements_of_a_posting_run(url("b.db"), 1, 40, 30)
    assert (crowded, posts_crowded) == (one, posts_one) == (one, 4)  # 2 alerts, 2 traces
    two, posts_two = await _statements_of_a_posting_run(url("c.db"), 2, 1, 0)
    three, posts_three = await _statements_of_a_posting_run(url("d.db"), 3, 1, 0)
    assert (posts_two, posts_three) == (8, 12)
    per_subscription = two - one
    assert three - two == per_subscription  # the same for each subscription that posts
    # Four posts (two alerts, each with its trace reply). Each alert: its intent (which checks
    # the lease: no renewal of its own), its thread, its records marked reported, its intent
    # turned into the trace's (one UPDATE settles the one and records the other); the trace's
    # settled. And one read of the subscription's alert threads.
    assert per_subscription == 2 * 5 + 1


async def test_a_renewal_landing_as_a_guard_expires_cuts_the_post_and_nothing_else() -> None:
    """The heartbeat's renewal can come back just as a post's guard fired: the post is cut
    (`LeaseExpiring`), the renewal does not fail on the guard, and the next post is guarded
    by the renewed deadline."""
    lease = _Lease(None, "w1", timedelta(seconds=0.4), T0, lambda: False)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()

    async def a_post_as_the_renewal_lands() -> None:
        async with lease.held(1):  # surely held for 0.3 s
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:  # the guard fired: a renewal lands now
                lease._renewed(loop.time())
                raise

    with pytest.raises(LeaseExpiring):
        await a_post_as_the_renewal_lands()
    async with lease.held(1):  # the renewal moved the deadline for the posts after it
        await asyncio.sleep(0.01)


async def test_a_lease_the_heartbeat_finds_gone_cuts_its_posts_at_once() -> None:
    """Another worker took subscription 1 over (a worker whose clock is off may take a lease
    still held): its post waiting on Slack's pace is cut at the next beat, not at the guard's
    deadline, and its run posts nothing more; subscription 2's posts go on."""

    class Renewing:
        async def renew_leases(self, worker: str, ids: Any, until: datetime) -> set[int]:
            return set(ids) - {1}

    lease = _Lease(Renewing(), "w1", timedelta(seconds=3), T0, lambda: False)  # type: ignore[arg-type]
    beating = asyncio.create_task(lease.keep_alive(lambda: [1, 2]))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(LeaseLost):
            async with lease.held(1):  # a 429's wait
                await asyncio.sleep(10)
        assert loop.time() - started < 1.5  # the beat (1 s), not the guard's 2.25 s
        with pytest.raises(LeaseLost):
            async with lease.held(1):
                pass
        async with lease.held(2):
            await asyncio.sleep(0.01)
    finally:
        beating.cancel()


async def test_text_no_store_takes_is_told_once_and_blocks_nothing(database_url: str) -> None:
    """A NUL (which PostgreSQL's text refuses) in a record's error and version, and in another
    record's request id: the first is told (U+FFFD in its place) and counted reported, the
    second is malformed, and the subscription's other news still go, once."""
    body = json.dumps(
        [
            {"created_at": _record(1, BOOM).created_at, "request_id": "req-1",
             "error": "error:\nbo\x00om\nstacktrace:\nNone", "algoversion": "1.\x00"},
            {"created_at": _record(2, BANG).created_at, "request_id": "req-\x002",
             "error": BANG},
            {"created_at": _record(3, BANG).created_at, "request_id": "req-3", "error": BANG},
        ]
    ).encode()  # fmt: skip
    batch = read_records(body)
    assert batch is not None
    async with await Store.open(database_url) as store:
        cluster, notifier = FakeCluster(), RecordingNotifier()
        cluster.records["acme/image_tagger"] = []
        await _subscribe(store, cluster)
        cluster.records["acme/image_tagger"] = list(batch.records)
        report = await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
        assert report.failed == {}
        assert notifier.kinds() == ["alert", "first_reply"] * 2
        notifier.said.clear()
        report = await _run(store, cluster, notifier, T0 + timedelta(minutes=30))
        assert (report.failed, notifier.said) == ({}, [])


async def test_an_alert_whose_records_a_burst_pushed_out_is_adopted_not_posted_again(
    store: Store,
) -> None:
    """Slack kept the alert, the process died before hearing so; before the next run, 200
    more errors of the same bug pushed the alert's records out of the API's window. The
    next run finds the alert in Slack and adopts it: its trace goes in its thread, the burst
    is told there as news, and no second alert is posted."""
    cluster = FakeCluster()
    subscription = await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(i, BOOM, 2) for i in range(1, 4)]
    dying = _DiesAfterSlackTookTheAlert()
    with pytest.raises(asyncio.CancelledError):
        await _run(store, cluster, dying, T0 + timedelta(minutes=15))
    (intent,) = (await store.open_intents([subscription.id]))[subscription.id]
    cluster.records["acme/image_tagger"] = [_record(i, BOOM, 0) for i in range(100, 300)]
    notifier = RecordingNotifier()
    notifier.posted, notifier._ts = dying.posted, dying._ts  # the same Slack
    await _run(store, cluster, notifier, T0 + timedelta(minutes=16), everything=True)
    assert notifier.kinds() == ["first_reply", "recurrence"]
    (thread,) = await store.alert_threads("C1", "acme/image_tagger", [intent.fingerprint])
    assert (thread.parent_ts, thread.count) == (dying.posted[intent.id], 3 + 200)
    assert (await store.open_intents([subscription.id]))[subscription.id] == []
    notifier.said.clear()
    await _run(store, cluster, notifier, T0 + timedelta(minutes=30))
    assert notifier.said == []


class _RefusesTraces(RecordingNotifier):
    refusing = True

    async def first_reply(
        self, channel_id: str, parent_ts: str, group: ErrorGroup,
        split_from: AlertThread | None, intent_id: str, *, again: bool = False,
    ) -> bool:  # fmt: skip
        if self.refusing:  # 5xx three times, or a 429 not waited out: tried at the next ticks
            return False
        return await super().first_reply(
            channel_id, parent_ts, group, split_from, intent_id, again=again
        )


async def test_a_refused_trace_reply_is_posted_later_though_a_burst_pushed_its_records_out(
    store: Store,
) -> None:
    cluster, notifier = FakeCluster(), _RefusesTraces()
    subscription = await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(i, BOOM, 2) for i in range(1, 4)]
    await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    (intent,) = (await store.open_intents([subscription.id]))[subscription.id]
    assert (intent.kind, notifier.kinds()) == (PostKind.TRACE, ["alert"])
    notifier.refusing = False
    cluster.records["acme/image_tagger"] = [_record(i, BOOM, 0) for i in range(100, 300)]
    await _run(store, cluster, notifier, T0 + timedelta(minutes=16), everything=True)
    assert notifier.kinds() == ["alert", "first_reply", "recurrence"]
    assert (await store.open_intents([subscription.id]))[subscription.id] == []


async def test_an_alert_posted_late_in_a_long_run_is_found_after_a_crash(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that has gone on for 30 minutes (a busy channel's turn, pacing, 429s) posts an
    alert; Slack keeps it, the process dies before the answer. The next run looks for it in
    Slack around when its intent was recorded, not when the run began, finds it and adopts
    it: one alert."""
    from bot.slack.notifier import SlackAlertNotifier
    from bot.slack.pacing import ChannelPacer
    from bot.slack.sender import SlackSender
    from bot.testing.slack_stand_in import SlackStandIn
    from bot.usecases import digest
    from bot.wiring.build import make_slack_client

    calls = iter(range(1_000_000))

    def monotonic() -> float:  # the run's clock: 30 minutes pass between its claim and post
        return time.monotonic() + (1800 if next(calls) else 0)

    monkeypatch.setattr(digest, "time", SimpleNamespace(monotonic=monotonic))
    async with SlackStandIn(rate_limit=None) as slack:
        pacer = ChannelPacer(0.001, burst=5)
        sender = SlackSender(make_slack_client("xoxb-test", slack.base_url, pacer), pacer=pacer)
        notifier = SlackAlertNotifier(sender)
        cluster = FakeCluster()
        await _subscribe(store, cluster, channel="C_GENERAL")
        cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
        held = slack.hold("chat.postMessage")
        began = datetime.now(UTC) - timedelta(minutes=30)
        running = asyncio.create_task(
            run_digests(store, cluster, notifier, now=began, worker="w1", everything=True)
        )
        await held.arrived(timeout=10)
        running.cancel()  # killed while Slack takes the alert
        await asyncio.gather(running, return_exceptions=True)
        held.release()
        await run_digests(
            store, cluster, notifier, now=datetime.now(UTC) + timedelta(minutes=1),
            worker="w2", everything=True,
        )  # fmt: skip
        await slack.wait_idle()
        assert len(slack.top_level("C_GENERAL")) == 1


async def test_a_click_while_a_regression_is_posted_is_not_written_over(store: Store) -> None:
    """The regression's reply waits its turn; meanwhile someone reopens the alert. The run
    then writes the alert's state only if it is still what the plan read: the click stands."""

    class ReopenedMeanwhile(RecordingNotifier):
        async def thread_news(
            self, action: DigestAction, intent_id: str | None, **_: object
        ) -> None:
            current = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
            assert current is not None
            reopened = replace(current, state=AlertState.OPEN, state_changed_by="U9")
            await store.update_alert_thread(reopened, fields=ALERT_STATE)
            await super().thread_news(action, intent_id)

    cluster = FakeCluster()
    await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(1, BOOM)]
    notifier = RecordingNotifier()
    await _run(store, cluster, notifier, T0 + timedelta(minutes=15))
    fingerprint = notifier.said[0][2]
    thread = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
    assert thread is not None
    await store.update_alert_thread(replace(thread, state=AlertState.RESOLVED), fields=ALERT_STATE)
    cluster.records["acme/image_tagger"].append(_record(2, BOOM))
    clicking = ReopenedMeanwhile()
    await _run(store, cluster, clicking, T0 + timedelta(minutes=30))
    assert clicking.kinds() == ["regression"]
    after = await store.find_alert_thread("C1", "acme/image_tagger", fingerprint)
    assert after is not None
    assert (after.state, after.state_changed_by, after.count) == (AlertState.OPEN, "U9", 2)


async def test_an_alert_slack_took_whose_bug_left_the_window_is_adopted_when_it_returns(
    store: Store,
) -> None:
    """Slack kept the alert, the process died before hearing so; before the next run, 200
    errors of another bug pushed every record of this one out of the API's window. Nothing
    to store its thread with: its intent stays open (no second alert) until the bug fires
    again, which is then told in the alert's thread."""
    cluster = FakeCluster()
    subscription = await _subscribe(store, cluster)
    cluster.records["acme/image_tagger"] = [_record(i, BOOM, 2) for i in range(1, 4)]
    dying = _DiesAfterSlackTookTheAlert()
    with pytest.raises(asyncio.CancelledError):
        await _run(store, cluster, dying, T0 + timedelta(minutes=15))
    cluster.records["acme/image_tagger"] = [_record(i, BANG, 1) for i in range(100, 300)]
    notifier = RecordingNotifier()
    notifier.posted, notifier._ts = dying.posted, dying._ts  # the same Slack
    await _run(store, cluster, notifier, T0 + timedelta(minutes=16), everything=True)
    assert notifier.kinds() == ["alert", "first_reply"]  # BANG's alert; BOOM's waits
    assert len((await store.open_intents([subscription.id]))[subscription.id]) == 1
    cluster.records["acme/image_tagger"].insert(0, _record(500, BOOM, 0))
    notifier.said.clear()
    await _run(store, cluster, notifier, T0 + timedelta(minutes=31))
    assert notifier.kinds() == ["first_reply", "recurrence"]  # in BOOM's first alert
    assert (await store.open_intents([subscription.id]))[subscription.id] == []
