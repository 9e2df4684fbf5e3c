"""`algo-errors-bot demo`: the real bot, served over HTTP, against the sample cluster and the
Slack stand-in shipped in `bot.testing`; prints the conversation as a reader would see it."""

from __future__ import annotations

from bot.testing.harness import running_bot
from bot.testing.transcript import render_conversation

DEMO_COMMANDS = ("acme/image_tagger since:2d", "acme/image_tager")


async def run_demo() -> int:
    async with running_bot() as bot:
        for text in DEMO_COMMANDS:
            print(f"$ /algo-errors {text}")
            ack = await bot.command(text)
            print(f"  (ack, only visible to you) {ack.json().get('text', '')}")
            await bot.slack.wait_idle()
        print()
        print(render_conversation(bot.slack))
    return 0
