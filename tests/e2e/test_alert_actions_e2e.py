"""Clicks on an alert that no longer fit it, and a bug behind a click: the user is told only
them, the alert shows what is true, and Slack always gets its ack."""

from __future__ import annotations

import copy
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
