"""`algo-errors-bot demo`: the real bot, served over HTTP, against the sample cluster and the
Slack stand-in shipped in `bot.testing`; prints the conversation as a reader would see it."""

from __future__ import annotations

import asyncio
import time

from bot.testing.harness import RunningBot, running_bot
from bot.testing.sample_cluster import SampleCluster, fresh_record
from bot.testing.transcript import render_conversation

DEMO_COMMANDS = ("acme/image_tagger since:2d", "acme/image_tager")
SUBSCRIBED_CHANNEL = "C_OTHER"
PYTHON_BUG = "py-notify-channel-id-int"
JAVA_BUG = "java-oom-heap-decoding-jpeg"


async def run_demo() -> int:
    async with running_bot() as bot:
        for text in DEMO_COMMANDS:
            await _type(bot, text)
        # A subscription in another channel that notifies Carol and announces a new kind of
        # error from its second occurrence: one bug crosses the threshold, one does not yet;
        # Alice takes the alert; both bugs come back.
        await _type(
            bot, "subscribe acme/image_tagger every:15m min:2 <@U_CAROL|carol>", SUBSCRIBED_CHANNEL
        )
        now_ms = int(time.time() * 1000)
        for offset, bug in enumerate((PYTHON_BUG, PYTHON_BUG, JAVA_BUG)):
            bot.cluster.append_records("acme", "image_tagger", [fresh_record(bug, now_ms + offset)])
        print("(two occurrences of one bug, one of another; the scheduler's digest tick runs:")
        print(" only the first has reached min:2)")
        await bot.digest()
        await bot.settled()
        (alert,) = [
            m for m in bot.slack.top_level(SUBSCRIBED_CHANNEL) if "actions" in str(m.blocks)
        ]
        print("(Alice clicks *Take it* on the alert)")
        await bot.click(alert, "group_take", user="U_ALICE")
        await bot.settled()
        for offset, bug in enumerate((PYTHON_BUG, JAVA_BUG)):
            bot.cluster.append_records(
                "acme", "image_tagger", [fresh_record(bug, now_ms + 1000 + offset)]
            )
        print("(both bugs happen again; the next digest tick runs)")
        await bot.digest()
        await bot.settled()
        print()
        print(render_conversation(bot.slack))
    return 0


SAMPLE_KEY = "simSampleClusterKey"
"""The API key the sample cluster of `demo --cluster` takes (it holds only the sample records)."""


async def serve_sample_cluster() -> int:
    """`demo --cluster`: the sample cluster alone, for trying `errors` (or a bot of one's own)
    against it: prints the settings that reach it, serves until interrupted."""
    async with SampleCluster(authorization=f"Simple {SAMPLE_KEY}") as cluster:
        algorithm = cluster.load_sample()
        print("The sample cluster serves acme/image_tagger (80 errors of 25 bugs) until Ctrl-C.")
        print("In another terminal (where no .env sets ALGORITHMIA_JWT, which the key excludes):")
        print()
        print(f"  export ALGORITHMIA_API_URL={cluster.base_url} ALGORITHMIA_API_KEY={SAMPLE_KEY}")
        print("  algo-errors-bot errors acme/image_tagger since:2d")
        print(f"  algo-errors-bot errors id:{algorithm} --traces")
        print("  algo-errors-bot errors acme/image_tagger type:ValueError --json")
        print(flush=True)
        await asyncio.Event().wait()  # until the process is interrupted
    return 0


async def _type(bot: RunningBot, text: str, channel: str = "C_GENERAL") -> None:
    print(f"$ /algo-errors {text}    (in #{channel})")
    ack = await bot.command(text, channel=channel)
    acked = ack.json().get("text", "") if ack.content else ""
    if acked:
        print(f"  (ack, only visible to you) {acked}")
    await bot.settled()
