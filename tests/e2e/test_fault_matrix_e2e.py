"""Slack failing a digest's post in every way it does, for every kind of post: once the fault
clears, each new kind of error has exactly one alert and one trace reply, each recurrence one
reply, each notice one message. Nothing lost, nothing doubled."""

from __future__ import annotations

from typing import Any

import pytest

from bot.testing.harness import RunningBot, running_bot
from tests.e2e.test_subscriptions_e2e import CHANNEL, _alerts, _kinds

FAULTS: dict[str, dict[str, Any]] = {
    "429": {"status": 429, "retry_after": 1},
    "500 three times": {"status": 500, "times": 3},
    "invalid_blocks": {"error": "invalid_blocks"},
    "not_in_channel": {"error": "not_in_channel"},
    "fatal_error": {"error": "fatal_error"},
}
POSTS = ("the new alert", "its trace reply", "a recurrence")


async def _digests(bot: RunningBot, runs: int = 3) -> None:
    """The run the fault hits, then the runs after it has cleared."""
    for _ in range(runs):
        await bot.digest()
    await bot.slack.wait_idle(quiet_s=0.1)


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
@pytest.mark.parametrize("post", POSTS)
async def test_a_fault_on_any_post_loses_nothing_and_doubles_nothing(
    fault: dict[str, Any], post: str
) -> None:
    async with running_bot() as bot:
        await bot.command("subscribe acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.messages) == 1)
        record = _kinds(1)
        if post != "a recurrence":
            bot.slack.fail_next("chat.postMessage", after=POSTS.index(post), **fault)
        bot.cluster.append_records("acme", "image_tagger", record)
        await _digests(bot)
        (alert,) = _alerts(bot.slack)
        assert len(bot.slack.thread(alert.ts)) == 1, bot.slack.summary()  # its trace, once
        if post == "a recurrence":
            bot.slack.fail_next("chat.postMessage", **fault)
        again = [dict(record[0], request_id=record[0]["request_id"] + "-again")]
        bot.cluster.append_records("acme", "image_tagger", again)
        await _digests(bot)
        assert [a.ts for a in _alerts(bot.slack)] == [alert.ts]  # still the one alert
        replies = bot.slack.thread(alert.ts)
        assert len(replies) == 2, bot.slack.summary()  # the trace, then the recurrence, once
        assert "1 new occurrence" in str(replies[1].blocks)


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
async def test_a_fault_on_the_outage_notice_still_tells_it_once(fault: dict[str, Any]) -> None:
    async with running_bot() as bot:
        await bot.command("subscribe acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.messages) == 1)
        bot.cluster.down = True
        bot.slack.fail_next("chat.postMessage", **fault)  # the notice of the third failure
        for _ in range(5):
            await bot.digest()
        await bot.slack.wait_idle(quiet_s=0.1)
        notices = [m for m in bot.slack.top_level(CHANNEL) if "could not reach" in m.text]
        assert len(notices) == 1, bot.slack.summary()
