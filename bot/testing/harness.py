"""The real bot served on 127.0.0.1 beside the sample cluster and the Slack stand-in.

Used by `demo`, the end-to-end tests and the benchmarks: everything goes over real HTTP, and
slash commands are signed the way Slack signs them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from bot.cli import build_bot, cluster_http
from bot.config import load_settings
from bot.slack.server import WebServer, create_web_app
from bot.testing.sample_cluster import SampleCluster
from bot.testing.signing import sign, slash_command_body
from bot.testing.slack_stand_in import SlackStandIn

SIGNING_SECRET = "demo-signing-secret"
API_KEY = "simDEMOKEY000000000000000000"


@dataclass
class RunningBot:
    """A served bot and its stand-ins; `command()` types a slash command."""

    url: str
    slack: SlackStandIn
    cluster: SampleCluster
    http: httpx.AsyncClient

    async def command(
        self,
        text: str,
        *,
        channel: str = "C_GENERAL",
        user: str = "U_ALICE",
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
    ) -> httpx.Response:
        """Send `/algo-errors text` signed like Slack signs it; returns the ack."""
        body = slash_command_body(
            text, response_url=self.slack.response_url(), channel_id=channel, user_id=user
        )
        return await self.http.post(
            f"{self.url}/slack/events", content=body, headers=sign(secret, body, timestamp)
        )


@asynccontextmanager
async def running_bot(*, show_input: bool = False) -> AsyncIterator[RunningBot]:
    """Start the sample cluster (loaded with the sample records), the stand-in and the bot."""
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
        cluster_http() as cluster_client,
        httpx.AsyncClient(timeout=10) as http,
    ):
        cluster.load_sample()
        settings = load_settings(
            {
                "ALGORITHMIA_API_URL": cluster.base_url,
                "ALGORITHMIA_API_KEY": API_KEY,
                "SLACK_BOT_TOKEN": "xoxb-demo",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.base_url,
                "SHOW_INPUT": str(show_input).lower(),
            }
        )
        bot = build_bot(settings, cluster_client)
        server = WebServer(create_web_app(bot.bolt, metrics=bot.metrics), "127.0.0.1", 0)
        await server.start()
        try:
            yield RunningBot(f"http://127.0.0.1:{server.port}", slack, cluster, http)
        finally:
            await server.stop()
