"""Posts paced per channel; resolve, mute and reopen change an alert as the buttons say."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.errors import SlackApiError

from bot.domain.alerts import (
    ALERT_STATE,
    MUTE_FOR,
    AlertAction,
    AlertRef,
    AlertState,
    AlertThread,
)
from bot.slack.blocks.alerts import MUTE_CHOICES
from bot.slack.blocks.base import SlackMessage
from bot.slack.pacing import ChannelPacer
from bot.slack.sender import SlackSender, intent_metadata
from bot.testing.slack_stand_in import PostedMessage, SlackStandIn
from bot.usecases.alerts import AlertChange, change_alert
from bot.wiring.build import make_slack_client

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class FakeTime:
    """A clock that moves only when the pacer sleeps, recording each sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def pacer(self, burst: int) -> ChannelPacer:
        return ChannelPacer(1.0, burst=burst, clock=lambda: self.now, sleep=self.sleep)


async def test_a_burst_of_three_then_a_second_apart_and_channels_do_not_wait() -> None:
    time_ = FakeTime()
    pacer, slept = time_.pacer(burst=3), time_.slept
    for _ in range(5):
        await pacer.wait("C1")
    await pacer.wait("C2")  # another channel has its own burst
    assert slept == [1.0, 1.0]
    time_.now += 2.5  # quiet for a while: the bucket refills, up to the burst
    for _ in range(2):
        await pacer.wait("C1")
    assert slept == [1.0, 1.0]
    await pacer.wait("C1")
    assert slept == [1.0, 1.0, 0.5]


async def test_concurrent_posts_in_one_channel_queue_up_in_order() -> None:
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0)  # let the others try to get in meanwhile
        clock[0] += seconds

    pacer = ChannelPacer(1.0, burst=1, clock=lambda: clock[0], sleep=sleep)
    order: list[int] = []

    async def post(number: int) -> None:
        await pacer.wait("C1")
        order.append(number)

    await asyncio.gather(*(post(n) for n in range(4)))
    assert order == [0, 1, 2, 3]
    assert clock[0] == 3.0


async def test_a_hold_after_a_429_empties_the_burst_and_delays_the_next_post() -> None:
    time_ = FakeTime()
    pacer, slept = time_.pacer(burst=3), time_.slept
    await pacer.wait("C1")
    pacer.hold("C1", 5.0)  # Slack said Retry-After: 5; the refused post goes again after it
    await pacer.wait("C1")  # the next one an interval later
    await pacer.wait("C2")  # other channels are not held
    assert slept == [6.0]
    await pacer.wait("C1")  # the burst starts again from empty
    assert slept == [6.0, 1.0]


async def test_a_429_holds_the_channel_for_every_post_queued_behind_it() -> None:
    """A post refused with Retry-After keeps its place: the posts queued behind it in the
    pacer wait for it, so all arrive once and in order; another channel is not held."""
    async with SlackStandIn(rate_limit=None, member_of=("C_GENERAL", "C_OTHER")) as slack:
        pacer = ChannelPacer(0.01, burst=1)
        client = make_slack_client("xoxb-test", slack.base_url, pacer, time_scale=0.01)
        sender = SlackSender(client, pacer=pacer)
        slack.fail_next("chat.postMessage", status=429, retry_after=3)
        texts = [f"post {n}" for n in range(5)]
        await asyncio.gather(
            *(sender.post("C_GENERAL", SlackMessage(text=t, blocks=())) for t in texts),
            sender.post("C_OTHER", SlackMessage(text="elsewhere", blocks=())),
        )
        limited = [c for c in slack.calls_to("chat.postMessage") if c.status == 429]
        assert len(limited) == 1
        assert [m.text for m in slack.top_level("C_GENERAL")] == texts
        assert [m.text for m in slack.top_level("C_OTHER")] == ["elsewhere"]


THREAD = AlertThread(
    channel_id="C1", algorithm="acme/x", fingerprint="f1", parent_ts="1.0",
    state=AlertState.OPEN, muted_until=None, state_changed_by=None, state_changed_at=None,
    count=1, versions=("1.0",), first_seen_ms=1, last_seen_ms=2, error_type="E", headline="h",
)  # fmt: skip


class MemoryAlerts:
    def __init__(self, thread: AlertThread | None) -> None:
        self.thread = thread
        self.fields: Collection[str] | None = None

    async def channel_alert_threads(self, channel_id: str, fingerprint: str
                                    ) -> list[AlertThread]:  # fmt: skip
        thread = self.thread
        return [thread] if thread is not None and thread.channel_id == channel_id else []

    async def update_alert_thread(
        self,
        thread: AlertThread,
        *,
        fields: Collection[str] | None = None,
        expected: AlertThread | None = None,
    ) -> bool:
        assert self.thread is not None
        if expected is not None and any(
            getattr(self.thread, f) != getattr(expected, f) for f in fields or ()
        ):
            return False
        changes = {f: getattr(thread, f) for f in fields} if fields else {}
        self.thread = replace(self.thread, **changes) if fields else thread
        self.fields = fields
        return True


REF = AlertRef.of(THREAD)


async def _click(alerts: MemoryAlerts, action: AlertAction, user: str, mute: str | None = None,
                 channel: str = "C1", ref: AlertRef = REF) -> AlertChange:  # fmt: skip
    return await change_alert(alerts, channel, ref, action=action, user=user, now=NOW, mute=mute)


async def test_resolve_mute_and_reopen() -> None:
    alerts = MemoryAlerts(THREAD)
    resolved = (await _click(alerts, AlertAction.RESOLVE, "U1")).thread
    assert resolved is not None
    assert (resolved.state, resolved.state_changed_by) == (AlertState.RESOLVED, "U1")
    assert alerts.fields == ALERT_STATE  # a click writes the state only, never the counters
    reopened = (await _click(alerts, AlertAction.REOPEN, "U3")).thread
    assert reopened == replace(THREAD, state_changed_by="U3", state_changed_at=NOW)
    muted = (await _click(alerts, AlertAction.MUTE, "U2", "24h")).thread
    assert muted is not None
    assert (muted.state, muted.muted_until) == (AlertState.MUTED, NOW + timedelta(hours=24))
    await _click(alerts, AlertAction.REOPEN, "U2")
    forever = (await _click(alerts, AlertAction.MUTE, "U2", "forever")).thread
    assert forever is not None
    assert (forever.state, forever.muted_until) == (AlertState.MUTED, None)


async def test_unknown_alerts_and_choices_change_nothing() -> None:
    assert (await _click(MemoryAlerts(None), AlertAction.RESOLVE, "U")).thread is None
    alerts = MemoryAlerts(THREAD)
    # Another channel's alert, or a ref of another algorithm: not found, nothing changed.
    assert (await _click(alerts, AlertAction.RESOLVE, "U", channel="C2")).thread is None
    other = AlertRef(REF.fingerprint, "0123456789")
    assert (await _click(alerts, AlertAction.RESOLVE, "U", ref=other)).thread is None
    refused = await _click(alerts, AlertAction.MUTE, "U", "1y")
    assert refused.refused is not None
    assert "not a mute length" in refused.refused
    refused = await _click(alerts, AlertAction.REOPEN, "U")
    assert refused.thread == THREAD
    assert refused.refused == "this alert is open; it cannot be reopened"
    assert alerts.thread == THREAD
    assert alerts.fields is None  # nothing written


def test_the_mute_select_offers_exactly_the_known_lengths() -> None:
    assert [value for value, _ in MUTE_CHOICES] == list(MUTE_FOR)


async def test_a_lost_posts_tag_is_found_behind_thousands_of_newer_messages() -> None:
    """After a crash the tagged post is looked for back to the moment it was sent, however busy
    the channel has been since; without that moment only the latest pages are read."""
    async with SlackStandIn(rate_limit=None) as slack:
        pacer = ChannelPacer(0.001, burst=5)
        sender = SlackSender(make_slack_client("xoxb-test", slack.base_url, pacer), pacer=pacer)
        sent = time.time()
        tag = intent_metadata("intent-1")
        ts = await sender.post("C_GENERAL", SlackMessage(text="the alert"), metadata=tag)
        for n in range(2_500):  # the channel's chatter since (people, other apps)
            slack.messages.append(
                PostedMessage("C_GENERAL", f"{sent + 1 + n / 1000:.6f}", None, f"chat {n}", [])
            )
        assert await sender.find_tagged("C_GENERAL", "intent-1", thread_ts=None, since=sent) == ts
        assert await sender.find_tagged("C_GENERAL", "intent-1", thread_ts=None) is None
        # Read narrowly: the chatter more than the post window after it is never read.
        (call, *_) = [c for c in slack.calls_to("conversations.history") if "oldest" in c.params]
        assert float(call.params["latest"]) - float(call.params["oldest"]) <= 35 * 60


async def test_when_slack_cannot_be_asked_a_lost_query_post_is_sent_again_not_dropped() -> None:
    """The answer of a post was lost and the history cannot be read either: a query's post is
    sent again (a rare double beats a lost answer); a digest's intent is left open instead,
    for the next run to look again."""
    async with SlackStandIn(rate_limit=None) as slack:
        pacer = ChannelPacer(0.001, burst=5)
        sender = SlackSender(make_slack_client("xoxb-test", slack.base_url, pacer), pacer=pacer)
        slack.lose_answer("chat.postMessage")
        slack.fail_next("conversations.history", status=500, times=10)
        await sender.post("C_GENERAL", SlackMessage(text="a query's answer"))
        assert [m.text for m in slack.top_level("C_GENERAL")] == ["a query's answer"] * 2
        slack.lose_answer("chat.postMessage")
        with pytest.raises(SlackApiError):
            await sender.post(
                "C_GENERAL", SlackMessage(text="an alert"), metadata=intent_metadata("intent-9")
            )
        assert [m.text for m in slack.top_level("C_GENERAL")].count("an alert") == 1
