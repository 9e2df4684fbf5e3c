"""Clicks on an alert that no longer fit it, and a bug behind a click: the user is told only
them, the alert shows what is true, and Slack always gets its ack."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bot.testing.harness import RunningBot, running_bot
from bot.testing.sample_cluster import fresh_record
from bot.testing.slack_stand_in import PostedMessage


@pytest.fixture
async def alerted() -> AsyncIterator[tuple[RunningBot, PostedMessage]]:
    """A bot whose channel has one alert (a digest posted it)."""
    async with running_bot() as bot:
        await bot.command("subscribe acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.top_level("C_GENERAL")) == 1)
        now_ms = int(time.time() * 1000)
        record = fresh_record("py-notify-channel-id-int", now_ms)
        bot.cluster.append_records("acme", "image_tagger", [record])
        await bot.digest()
        await bot.slack.wait_idle(quiet_s=0.2)
        (alert,) = [
            m
            for m in bot.slack.top_level("C_GENERAL")
            if any(b["type"] == "actions" for b in m.blocks)
        ]
        yield bot, alert


async def test_a_stale_resolve_changes_nothing_and_says_why(
    alerted: tuple[RunningBot, PostedMessage],
) -> None:
    bot, alert = alerted
    as_first_posted = replace(alert, blocks=copy.deepcopy(alert.blocks))
    assert (await bot.click(alert, "group_resolve", user="U_ALICE")).status_code == 200
    await bot.slack.wait_for(lambda s: "*Resolved* by <@U_ALICE>" in str(alert.blocks))
    # Bob still sees the message as it was and clicks Resolve too.
    response = await bot.click(as_first_posted, "group_resolve", user="U_BOB")
    assert response.status_code == 200
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1, timeout=10)
    (told,) = bot.slack.ephemerals
    assert "Nothing changed: this alert is resolved; it cannot be resolved" in told.text
    await bot.slack.wait_idle(quiet_s=0.2)
    assert "*Resolved* by <@U_ALICE>" in str(alert.blocks)  # still Alice's, shown again


async def test_a_click_sent_from_another_channel_changes_nothing_and_says_so(
    alerted: tuple[RunningBot, PostedMessage],
) -> None:
    """Whatever the button's value says, only an alert of the channel the click came from is
    changed (a forged payload, or a message shared elsewhere)."""
    bot, alert = alerted
    elsewhere = replace(alert, channel="C_OTHER", blocks=copy.deepcopy(alert.blocks))
    assert (await bot.click(elsewhere, "group_resolve", user="U_ALICE")).status_code == 200
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1, timeout=10)
    assert bot.slack.ephemerals[0].text == (
        "The bot has no such alert in this channel, so nothing changed."
    )
    await bot.slack.wait_idle(quiet_s=0.2)
    assert "Resolved" not in str(alert.blocks)
    assert alert.updates == []


async def test_a_bug_behind_a_click_is_logged_and_told_only_to_the_user(
    alerted: tuple[RunningBot, PostedMessage],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.slack.listeners import actions

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the bot")

    bot, alert = alerted
    monkeypatch.setattr(actions, "change_alert", broken)
    before = copy.deepcopy(alert.blocks)
    assert (await bot.click(alert, "group_resolve")).status_code == 200
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1, timeout=10)
    (told,) = bot.slack.ephemerals
    assert "Something went wrong on the bot's side" in told.text
    assert alert.blocks == before  # the alert itself is left as it was
    assert "RuntimeError: a bug in the bot" in caplog.text


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_take_on_the_home_tab_of_an_alert_deleted_in_slack_is_told_there(
    alerted: tuple[RunningBot, PostedMessage], caplog: pytest.LogCaptureFixture
) -> None:
    """The Home tab lists the alert from the bot's records; its message was deleted in
    Slack. A take still makes the user its owner, and the tab, published again, says that
    the message could not show it: no failure, no traceback."""
    bot, alert = alerted
    await bot.open_home("U_ALICE")
    await bot.slack.wait_for(lambda s: "U_ALICE" in s.home_views)
    await bot.settled()
    value = next(
        element["value"]
        for block in bot.slack.home_views["U_ALICE"]["blocks"]
        for element in block.get("elements", [])
        if element.get("action_id") == "group_take"
    )
    bot.slack.messages = [
        m for m in bot.slack.messages if alert.ts not in (m.ts, m.thread_ts)
    ]  # deleted, its thread with it
    assert (await bot.click_home("U_ALICE", "group_take", value)).status_code == 200
    await bot.slack.wait_for(
        lambda s: "its message could not show it" in str(s.home_views["U_ALICE"]), timeout=10
    )
    assert "the alert message was deleted" in str(bot.slack.home_views["U_ALICE"])
    assert _errors(caplog) == []


async def test_a_take_whose_thread_reply_slack_refuses_is_done_and_said_so(
    alerted: tuple[RunningBot, PostedMessage], caplog: pytest.LogCaptureFixture
) -> None:
    bot, alert = alerted
    bot.slack.fail_next("chat.postMessage", error="thread_not_found")  # the thread was deleted
    assert (await bot.click(alert, "group_take", user="U_ALICE")).status_code == 200
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1, timeout=10)
    (told,) = bot.slack.ephemerals
    assert "Done: the alert is changed, but its message could not show it" in told.text
    assert "<@U_ALICE>" in str(alert.blocks)  # the parent shows its new owner
    assert _errors(caplog) == []


@pytest.mark.parametrize("action", ["group_take", "group_resolve"])
async def test_a_double_click_acts_once(
    alerted: tuple[RunningBot, PostedMessage], action: str
) -> None:
    bot, alert = alerted
    replies = len(bot.slack.thread(alert.ts))
    clicks = await asyncio.gather(bot.click(alert, action), bot.click(alert, action))
    assert [r.status_code for r in clicks] == [200, 200]
    await bot.settled()
    await bot.slack.wait_idle(quiet_s=0.2)
    told = [m.text for m in bot.slack.thread(alert.ts)[replies:]]
    assert len(told) == (1 if action == "group_take" else 0)  # "… took this." once
    assert len(bot.slack.ephemerals) == 1  # the other click is told nothing changed


async def test_slack_failing_after_a_command_is_its_outage_told_in_one_line_not_a_bug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Slack answering 500 to every post (after the sender's own retries): the user hears
    Slack is in trouble, the log has one warning line and no traceback; a subscription made
    meanwhile is said to be made."""
    async with running_bot() as bot:
        bot.slack.fail_next("chat.postMessage", status=500, times=50)
        await bot.command("acme/image_tagger since:1d")
        await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1, timeout=15)
        assert bot.slack.ephemerals[0].text.startswith(
            ":warning: Slack is having trouble (Slack answered 500 (fatal_error)), so this"
        )
        await bot.command("subscribe acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.ephemerals) == 2, timeout=15)
        assert bot.slack.ephemerals[1].text.startswith(
            ":warning: The subscription is made, but Slack did not take its confirmation"
        )
        await bot.settled(quiet_s=0.1)
    assert _errors(caplog) == []
    assert "Traceback" not in caplog.text
    assert "handling /algo-errors needed Slack: Slack answered 500 (fatal_error)" in caplog.text
