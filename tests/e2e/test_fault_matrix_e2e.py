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
    "connection reset": {"lost_answer": True},
    "timeout": {"lost_answer": True, "late_s": 2.0},
}
TIMEOUT_S = 1
"""The bot's Web API timeout here: the "timeout" fault answers later than that."""
POSTS = ("the new alert", "its trace reply", "a recurrence")


def _fail_next(bot: RunningBot, *, lost_answer: bool = False, **fault: Any) -> None:
    """The next chat.postMessage fails as `fault` says, or is kept and its answer lost."""
    if lost_answer:
        bot.slack.lose_answer("chat.postMessage", **fault)
    else:
        bot.slack.fail_next("chat.postMessage", **fault)


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
    async with running_bot(slack_timeout_s=TIMEOUT_S) as bot:
        await bot.command("subscribe acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.messages) == 1)
        record = _kinds(1)
        if post != "a recurrence":
            _fail_next(bot, after=POSTS.index(post), **fault)
        bot.cluster.append_records("acme", "image_tagger", record)
        await _digests(bot)
        (alert,) = _alerts(bot.slack)
        assert len(bot.slack.thread(alert.ts)) == 1, bot.slack.summary()  # its trace, once
        if post == "a recurrence":
            _fail_next(bot, **fault)
        again = [dict(record[0], request_id=record[0]["request_id"] + "-again")]
        bot.cluster.append_records("acme", "image_tagger", again)
        await _digests(bot)
        assert [a.ts for a in _alerts(bot.slack)] == [alert.ts]  # still the one alert
        replies = bot.slack.thread(alert.ts)
        assert len(replies) == 2, bot.slack.summary()  # the trace, then the recurrence, once
        assert "1 new occurrence" in str(replies[1].blocks)


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
async def test_a_fault_on_the_outage_notice_still_tells_it_once(fault: dict[str, Any]) -> None:
    async with running_bot(slack_timeout_s=TIMEOUT_S) as bot:
        await bot.command("subscribe acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.messages) == 1)
        bot.cluster.down = True
        _fail_next(bot, **fault)  # the notice of the third failure
        for _ in range(5):
            await bot.digest()
        await bot.slack.wait_idle(quiet_s=0.1)
        notices = [m for m in bot.slack.top_level(CHANNEL) if "could not reach" in m.text]
        assert len(notices) == 1, bot.slack.summary()


QUERY_FAULTS = {k: FAULTS[k] for k in ("429", "connection reset", "timeout")} | {
    "500 once": {"status": 500},
}


@pytest.mark.parametrize("fault", QUERY_FAULTS.values(), ids=QUERY_FAULTS.keys())
async def test_a_fault_on_a_query_reply_keeps_every_reply_once_and_in_order(
    fault: dict[str, Any],
) -> None:
    async with running_bot(slack_timeout_s=TIMEOUT_S) as bot:
        await bot.command("acme/image_tagger")  # as it reads when nothing fails
        await bot.slack.wait_for(lambda s: len(s.messages) == 21, timeout=20)
        await bot.slack.wait_idle(quiet_s=0.2)
        expected = [r.text for r in bot.slack.thread(bot.slack.top_level(CHANNEL)[0].ts)]
        _fail_next(bot, after=3, **fault)  # the parent and two replies go through
        await bot.command("acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.messages) == 42, timeout=20)
        await bot.slack.wait_idle(quiet_s=0.2)
        parent = bot.slack.top_level(CHANNEL)[1]
        assert [r.text for r in bot.slack.thread(parent.ts)] == expected, bot.slack.summary()
