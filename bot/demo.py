"""`algo-errors-bot demo`: the real bot, served over HTTP, against the sample cluster and the
Slack stand-in shipped in `bot.testing`; prints the conversation as a reader would see it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from bot.cli import EXIT_OK, build_bot, cluster_http
from bot.config import load_settings
from bot.slack.server import WebServer
from bot.testing.sample_cluster import SampleCluster
from bot.testing.signing import sign, slash_command_body
from bot.testing.slack_stand_in import SlackStandIn
from bot.testing.transcript import render_conversation

SIGNING_SECRET = "demo-signing-secret"
DEMO_KEY = "simDEMOKEY000000000000000000"


@dataclass
class RunningBot:
    """A bot served on 127.0.0.1 beside its stand-ins, and a way to type slash commands."""

    url: str
    slack: SlackStandIn
    cluster: SampleCluster
    http: httpx.AsyncClient

    async def command(self, text: str, *, channel: str = "C_GENERAL") -> httpx.Response:
        """Send `/algo-errors text` signed like Slack signs it; returns the ack."""
        body = slash_command_body(
            text, response_url=self.slack.response_url(), channel_id=channel
        )
        return await self.http.post(
            f"{self.url}/slack/events", content=body, headers=sign(SIGNING_SECRET, body)
        )


@asynccontextmanager
async def running_bot(*, show_input: bool = False) -> AsyncIterator[RunningBot]:
    async with (
        SampleCluster(authorization=f"Simple {DEMO_KEY}") as cluster,
        SlackStandIn() as slack,
        cluster_http() as cluster_client,
        httpx.AsyncClient(timeout=10) as http,
    ):
        cluster.load_sample()
        settings = load_settings(
            {
                "ALGORITHMIA_API_URL": cluster.base_url,
                "ALGORITHMIA_API_KEY": DEMO_KEY,
                "SLACK_BOT_TOKEN": "xoxb-demo",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.base_url,
                "SHOW_INPUT": str(show_input).lower(),
            },
            env_file=None,
        )
        bot = build_bot(settings, cluster_client)
        server = WebServer(bot.web_app, "127.0.0.1", 0)
        await server.start()
        try:
            yield RunningBot(f"http://127.0.0.1:{server.port}", slack, cluster, http)
        finally:
            await server.stop()


async def run_demo() -> int:
    async with running_bot() as bot:
        for text in ("acme/image_tagger since:2d", "acme/image_tager"):
            print(f"$ /algo-errors {text}")
            ack = await bot.command(text)
            print(f"  (ack, only visible to you) {ack.json().get('text', '')}")
            await bot.slack.wait_idle()
        print()
        print(render_conversation(bot.slack))
    return EXIT_OK
