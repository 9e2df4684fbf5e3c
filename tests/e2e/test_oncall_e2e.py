"""The on-call workflow through the served bot and the Slack stand-in (INTERFACE §3.3): an
owner taken, assigned and handed back; the people a subscription notifies; a threshold; and
"resolved in the next version"."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.testing.harness import RunningBot, running_bot
from bot.testing.sample_cluster import fresh_record
from bot.testing.slack_stand_in import PostedMessage
from tests.e2e.test_subscriptions_e2e import CHANNEL, _alerts

BUG = "py-notify-channel-id-int"


def _occurrence(version: str = "1.4.0") -> dict[str, Any]:
    return fresh_record(BUG, int(time.time() * 1000)) | {"algoversion": version}


async def _subscribed(bot: RunningBot, text: str = "") -> None:
    await bot.command(f"subscribe acme/image_tagger {text}".strip())
    await bot.slack.wait_for(lambda s: len(s.top_level(CHANNEL)) == 1)


async def _digest(bot: RunningBot, *records: dict[str, Any]) -> None:
    bot.cluster.append_records("acme", "image_tagger", list(records))
    await bot.digest()
    await bot.slack.wait_idle(quiet_s=0.2)


async def _clicked(bot: RunningBot, alert: PostedMessage, action: str, **kwargs: Any) -> None:
    replies = len(bot.slack.thread(alert.ts))
    updates = len(alert.updates)
    response = await bot.click(alert, action, **kwargs)
    assert response.status_code == 200
    await bot.slack.wait_for(lambda s: len(alert.updates) > updates)
    await bot.slack.wait_idle(quiet_s=0.1)
    assert len(bot.slack.thread(alert.ts)) >= replies


@pytest.fixture
async def alerted() -> AsyncIterator[tuple[RunningBot, PostedMessage]]:
    async with running_bot() as bot:
        await _subscribed(bot)
        await _digest(bot, _occurrence())
        (alert,) = _alerts(bot.slack)
        yield bot, alert


async def test_take_assign_and_hand_back_are_shown_and_told_in_the_thread(
    alerted: tuple[RunningBot, PostedMessage],
) -> None:
    bot, alert = alerted
    assert "No owner yet" in str(alert.blocks)
    await _clicked(bot, alert, "group_take", user="U_ALICE")
    assert "Owner: <@U_ALICE> since <!date^" in str(alert.blocks)
    assert bot.slack.thread(alert.ts)[-1].text == ":raised_hand: <@U_ALICE> took this."
    await _clicked(bot, alert, "group_assign", user="U_ALICE", selected="U_BOB")
    assert "Owner: <@U_BOB>" in str(alert.blocks)
    told = bot.slack.thread(alert.ts)[-1]
    assert told.text == ":point_right: <@U_ALICE> assigned this to <@U_BOB>."
    assert not told.reply_broadcast
    # The owner is mentioned when the error comes back, and kept through resolve.
    await _digest(bot, _occurrence())
    recurrence = bot.slack.thread(alert.ts)[-1]
    assert recurrence.text.startswith("<@U_BOB> 1 new:")
    await _clicked(bot, alert, "group_resolve", user="U_BOB")
    assert "Owner: <@U_BOB>" in str(alert.blocks)
    assert "*Resolved* by <@U_BOB>" in str(alert.blocks)
    await _digest(bot, _occurrence())
    regression = bot.slack.thread(alert.ts)[-1]
    assert regression.reply_broadcast
    assert regression.text.startswith("<@U_BOB> Regression:")
    await _clicked(bot, alert, "group_release", user="U_BOB")
    assert "No owner yet" in str(alert.blocks)
    assert "<@U_BOB> handed this back" in bot.slack.thread(alert.ts)[-1].text


async def test_taking_an_alert_one_owns_changes_nothing_and_says_so(
    alerted: tuple[RunningBot, PostedMessage],
) -> None:
    bot, alert = alerted
    await _clicked(bot, alert, "group_take", user="U_ALICE")
    replies = len(bot.slack.thread(alert.ts))
    await _clicked(bot, alert, "group_take", user="U_ALICE")
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1)
    assert "you already own this alert" in bot.slack.ephemerals[0].text
    assert len(bot.slack.thread(alert.ts)) == replies  # no second "took this"


async def test_the_notify_list_is_mentioned_once_the_threshold_is_crossed() -> None:
    async with running_bot() as bot:
        await _subscribed(bot, "<@U_CAROL|carol> <!subteam^S_ONCALL|@oncall> min:2")
        (confirmation,) = bot.slack.top_level(CHANNEL)
        assert "notifies 2 people and groups" in str(confirmation.blocks)
        assert "<@U_CAROL>" not in str(confirmation.blocks)  # counted, not pinged, there
        await _digest(bot, _occurrence())  # one occurrence: below min:2, nothing told
        assert _alerts(bot.slack) == []
        await _digest(bot, _occurrence())  # the first is counted again: two now
        (alert,) = _alerts(bot.slack)
        assert alert.text.startswith("<@U_CAROL> <!subteam^S_ONCALL> ")
        assert "2 occurrences" in alert.text
        await bot.command("list")
        await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1)
        listed = str(bot.slack.ephemerals[0].blocks)
        assert "notifies <@U_CAROL> <!subteam^S_ONCALL>" in listed
        assert "`min:2`" in listed
        # Subscribing again with only a schedule keeps the list and the threshold.
        await bot.command("subscribe acme/image_tagger every:1h")
        await bot.slack.wait_for(lambda s: len(s.top_level(CHANNEL)) == 3)
        await bot.command("list")
        await bot.slack.wait_for(lambda s: len(s.ephemerals) == 2)
        listed = str(bot.slack.ephemerals[1].blocks)
        for kept in ("`every:1h`", "<@U_CAROL>", "`min:2`"):
            assert kept in listed


async def test_a_bad_mention_is_refused_and_nothing_is_stored() -> None:
    async with running_bot() as bot:
        ack = await bot.command("subscribe acme/image_tagger <!here>")
        assert "`@here`: the bot never notifies a whole channel" in ack.json()["text"]
        await bot.slack.wait_idle(quiet_s=0.2)
        assert bot.slack.top_level(CHANNEL) == []


async def test_resolved_in_the_next_version_is_quiet_for_old_versions_and_loud_for_new(
    alerted: tuple[RunningBot, PostedMessage],
) -> None:
    bot, alert = alerted
    await _clicked(bot, alert, "group_resolve_next", user="U_ALICE")
    assert "*Resolved in the next version after 1.4.0* by <@U_ALICE>" in str(alert.blocks)
    await _digest(bot, _occurrence("1.4.0"))
    quiet = bot.slack.thread(alert.ts)[-1]
    assert "Still resolved" in str(quiet.blocks)
    assert not quiet.reply_broadcast
    assert "*Resolved in the next version after 1.4.0*" in str(alert.blocks)  # still resolved
    await _digest(bot, _occurrence("1.5.0"))
    loud = bot.slack.thread(alert.ts)[-1]
    assert loud.reply_broadcast
    assert "Regression" in loud.text
    assert "*Regressed*" in str(alert.blocks)
