"""When Slack or the channel misbehaves, the user still hears what happened and nothing is lost."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from bot.testing.harness import RunningBot, running_bot


@pytest.fixture
async def bot() -> AsyncIterator[RunningBot]:
    async with running_bot() as running:
        yield running


async def test_a_reply_slack_refuses_does_not_cut_the_thread_short(bot: RunningBot) -> None:
    bot.slack.fail_next("chat.postMessage", error="invalid_blocks", after=3)  # the 3rd reply
    await bot.command("acme/image_tagger")
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1, timeout=10)
    (parent,) = bot.slack.top_level("C_GENERAL")
    assert len(bot.slack.thread(parent.ts)) == 19
    (notice,) = bot.slack.ephemerals
    assert "19 of 20 groups are in the thread" in notice.text


async def test_a_failed_trace_upload_keeps_every_reply(bot: RunningBot) -> None:
    bot.slack.fail_next("upload", status=500)
    await bot.command("acme/image_tagger")
    await bot.slack.wait_for(lambda s: len(s.messages) == 21, timeout=10)
    await bot.slack.wait_idle()
    assert bot.slack.ephemerals == []


async def test_rate_limited_post_waits_and_posts_everything_once(bot: RunningBot) -> None:
    bot.slack.fail_next("chat.postMessage", status=429, retry_after=1)
    await bot.command("acme/image_tagger")
    await bot.slack.wait_for(lambda s: len(s.messages) == 21, timeout=15)
    await bot.slack.wait_idle()
    assert len(bot.slack.messages) == 21
    refused = [c for c in bot.slack.calls_to("chat.postMessage") if c.status == 429]
    assert len(refused) == 1
    assert bot.slack.ephemerals == []


async def test_a_failing_response_url_falls_back_to_an_ephemeral_message(bot: RunningBot) -> None:
    bot.slack.fail_next("response_url", status=404)
    await bot.command("acme/image_tager")
    await bot.slack.wait_for(lambda s: len(s.calls_to("chat.postEphemeral")) == 1)
    (call,) = bot.slack.calls_to("chat.postEphemeral")
    assert call.params["user"] == "U_ALICE"
    assert call.params["channel"] == "C_GENERAL"
    assert "There is no algorithm *acme/image_tager*" in call.params["text"]
    assert bot.slack.messages == []


async def test_an_archived_channel_is_named_as_the_cause(bot: RunningBot) -> None:
    bot.slack.archived_channels.add("C_GENERAL")
    await bot.command("acme/image_tagger")
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1)
    assert "the channel is archived" in bot.slack.ephemerals[0].text
    assert bot.slack.messages == []


async def test_a_direct_message_is_told_to_use_a_channel(bot: RunningBot) -> None:
    await bot.command("acme/image_tagger", channel="D_ALICE_BOB")
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1)
    assert "use a channel" in bot.slack.ephemerals[0].text
    assert bot.slack.calls_to("conversations.join") == []
    assert bot.slack.messages == []


async def test_a_bug_behind_a_command_is_logged_and_told_only_to_the_user(
    bot: RunningBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.slack.listeners import commands

    async def broken(*args: object) -> None:
        raise RuntimeError("a bug in the bot")

    monkeypatch.setattr(commands, "list_subscriptions", broken)
    ack = await bot.command("list")
    assert ack.status_code == 200
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1, timeout=10)
    (told,) = bot.slack.ephemerals
    assert "Something went wrong on the bot's side" in told.text
    assert bot.slack.messages == []  # nothing in the channel
    (logged,) = [r for r in caplog.records if r.exc_info and r.levelname == "ERROR"]
    assert "RuntimeError: a bug in the bot" in caplog.text
    assert logged.name == "bot.slack.listeners.services"  # the listeners' one catch-all


async def test_a_join_slack_fails_once_leaves_the_subscription_running_and_posts_later(
    bot: RunningBot,
) -> None:
    """The bot was removed from the channel, and Slack answers its join with a 500 once: that
    is Slack's trouble, not a channel gone for good, so the subscription is not paused and the
    alert is posted by the next run."""
    from bot.testing.sample_cluster import fresh_record
    from tests.e2e.test_subscriptions_e2e import _alerts

    await bot.command("subscribe acme/image_tagger")
    await bot.slack.wait_for(lambda s: len(s.top_level("C_GENERAL")) == 1)
    bot.slack.fail_next("chat.postMessage", error="not_in_channel")
    bot.slack.fail_next("conversations.join", status=500)
    record = fresh_record("py-notify-channel-id-int", int(time.time() * 1000))
    bot.cluster.append_records("acme", "image_tagger", [record])
    first = await bot.digest()
    assert first.failed  # this run could not post
    assert first.posted == 0
    second = await bot.digest()  # what Slack did not take is tried at the next tick
    assert second.failed == {}
    await bot.settled(quiet_s=0.2)
    assert len(_alerts(bot.slack)) == 1
    await bot.command("list")
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1)
    assert "paused" not in bot.slack.ephemerals[0].text
