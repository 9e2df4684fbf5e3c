"""`algo-errors-bot demo`: the real bot, served over HTTP, against the sample cluster and the
Slack stand-in shipped in `bot.testing`; prints the conversation as a reader would see it."""

from __future__ import annotations

import time

from bot.testing.harness import RunningBot, running_bot
from bot.testing.sample_cluster import fresh_record
from bot.testing.transcript import render_conversation

DEMO_COMMANDS = ("acme/image_tagger since:2d", "acme/image_tager")
SUBSCRIBED_CHANNEL = "C_OTHER"


async def run_demo() -> int:
    async with running_bot() as bot:
        for text in DEMO_COMMANDS:
            await _type(bot, text)
        # A subscription in another channel: a digest with two new kinds of error, then a
        # recurrence that lands in its alert's thread.
        await _type(bot, "subscribe acme/image_tagger every:15m", SUBSCRIBED_CHANNEL)
        now_ms = int(time.time() * 1000)
        for bug in ("py-notify-channel-id-int", "java-oom-heap-decoding-jpeg"):
            bot.cluster.append_records("acme", "image_tagger", [fresh_record(bug, now_ms)])
        print("(two new kinds of error on the cluster; the scheduler's digest tick runs)")
        await bot.digest()
        bot.cluster.append_records(
            "acme", "image_tagger", [fresh_record("py-notify-channel-id-int", now_ms + 1000)]
        )
        print("(one of them happens again; the next digest tick runs)")
        await bot.digest()
        await bot.slack.wait_idle()
        print()
        print(render_conversation(bot.slack))
    return 0


async def _type(bot: RunningBot, text: str, channel: str = "C_GENERAL") -> None:
    print(f"$ /algo-errors {text}    (in #{channel})")
    ack = await bot.command(text, channel=channel)
    acked = ack.json().get("text", "") if ack.content else ""
    if acked:
        print(f"  (ack, only visible to you) {acked}")
    await bot.slack.wait_idle()
