"""The real bot served on 127.0.0.1 beside the sample cluster and the Slack stand-in.

Used by `demo`, the end-to-end tests and the benchmarks: everything goes over real HTTP, and
slash commands are signed the way Slack signs them.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot.config import load_settings
from bot.slack.listeners.services import AfterAck
from bot.slack.server import WebServer, create_web_app
from bot.testing.sample_cluster import SampleCluster
from bot.testing.signing import (
    block_actions_body,
    event_callback,
    home_actions_body,
    home_opened_event,
    sign,
    slash_command_body,
)
from bot.testing.slack_stand_in import PostedMessage, SlackStandIn
from bot.usecases.digest import DigestReport
from bot.wiring.build import SLACK_TIMEOUT_S, cluster_http, open_bot, open_store, worker_name
from bot.wiring.health import DatabaseWatch, gauges, readiness
from bot.wiring.run import DigestRunner

SIGNING_SECRET = "demo-signing-secret"
PACE_HEADROOM = 2.0
"""The bot paces at half Slack's rate on the stand-in's faster clock: at full rate the pacer's
margin would be a millisecond, below the loopback's jitter, and Slack would refuse posts at
its bucket's edge."""
API_KEY = "simDEMOKEY000000000000000000"
HARNESS_DRAIN_S = 2.0
"""How long the work after the acks may take to end when a test's bot stops (then cut short)."""


@dataclass
class RunningBot:
    """A served bot and its stand-ins; `command()` types a slash command, `digest()` runs
    the scheduler's digest tick once."""

    url: str
    slack: SlackStandIn
    cluster: SampleCluster
    http: httpx.AsyncClient
    digest_tick: Callable[[], Awaitable[DigestReport]]
    after_ack: AfterAck

    async def digest(self) -> DigestReport:
        return await self.digest_tick()

    async def settled(self, quiet_s: float = 0.3) -> None:
        """Wait until the work after every ack so far is done and Slack has been quiet."""
        await self.after_ack.settled()
        await self.slack.wait_idle(quiet_s=quiet_s)

    async def click(
        self, message: PostedMessage, action_id: str, *, selected: str | None = None,
        user: str = "U_ALICE",
    ) -> httpx.Response:  # fmt: skip
        """Click a button (or choose in a select) of a message the bot posted (as last
        edited), signed like Slack signs interactions."""
        body = block_actions_body(
            channel_id=message.channel, message_ts=message.ts, blocks=message.blocks,
            action_id=action_id, user_id=user, response_url=self.slack.response_url("click"),
            selected=selected,
        )  # fmt: skip
        return await self.http.post(
            f"{self.url}/slack/events", content=body, headers=sign(SIGNING_SECRET, body)
        )

    async def event(self, event: dict[str, Any]) -> httpx.Response:
        """Deliver an Events API event (`event_callback`), signed like Slack signs it."""
        body = json.dumps(event_callback(event))
        headers = sign(SIGNING_SECRET, body, content_type="application/json")
        return await self.http.post(f"{self.url}/slack/events", content=body, headers=headers)

    async def open_home(self, user: str = "U_ALICE") -> httpx.Response:
        """The user opens the app's Home tab (with the view last published, as Slack sends)."""
        return await self.event(home_opened_event(user, self.slack.home_views.get(user)))

    async def click_home(self, user: str, action_id: str, value: str) -> httpx.Response:
        """Click a button of the user's Home tab as last published."""
        view = self.slack.home_views[user]
        body = home_actions_body(view=view, action_id=action_id, value=value, user_id=user)
        return await self.http.post(
            f"{self.url}/slack/events", content=body, headers=sign(SIGNING_SECRET, body)
        )

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


def process_env(
    cluster: SampleCluster, slack: SlackStandIn, database_url: str, **more: str
) -> dict[str, str]:
    """The environment of a real `python -m bot …` process against these stand-ins (the
    tests that start, signal or kill one); `more` adds or replaces settings."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "ALGORITHMIA_API_URL": cluster.base_url,
        "ALGORITHMIA_API_KEY": API_KEY,
        "SLACK_BOT_TOKEN": "xoxb-stand-in",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.base_url,
        "DATABASE_URL": database_url,
        **more,
    }


@asynccontextmanager
async def running_bot(
    *,
    show_input: bool = False,
    database: Path | None = None,
    database_url: str | None = None,
    cluster: SampleCluster | None = None,
    slack: SlackStandIn | None = None,
    slack_timeout_s: int = SLACK_TIMEOUT_S,
) -> AsyncIterator[RunningBot]:
    """Start the sample cluster (loaded with the sample records), the stand-in and the bot.

    Pass `database` (a file) and running `cluster`/`slack` stand-ins to start a second bot
    on the same state, as after a restart; `database_url` for another store (PostgreSQL);
    `slack_timeout_s` for the bot's Web API calls."""
    async with contextlib.AsyncExitStack() as stack:
        if cluster is None:
            cluster = await stack.enter_async_context(
                SampleCluster(authorization=f"Simple {API_KEY}")
            )
            cluster.load_sample()
        if slack is None:
            slack = await stack.enter_async_context(SlackStandIn())
        if database is None:
            database = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "bot.db"
        if database_url is None:
            database_url = f"sqlite:///{database}"
        cluster_client = await stack.enter_async_context(cluster_http())
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        settings = load_settings(
            {
                "ALGORITHMIA_API_URL": cluster.base_url,
                "ALGORITHMIA_API_KEY": API_KEY,
                "SLACK_BOT_TOKEN": "xoxb-demo",
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.base_url,
                "SHOW_INPUT": str(show_input).lower(),
                "DATABASE_URL": database_url,
            }
        )
        store = await stack.enter_async_context(open_store(settings))
        # Below Slack's pace (`PACE_HEADROOM`) on the stand-in's faster clock.
        bot = await stack.enter_async_context(
            open_bot(
                settings,
                cluster_client,
                store,
                slack_speed=slack.speed / PACE_HEADROOM,
                slack_timeout_s=slack_timeout_s,
            )
        )
        # As a served process stops: the work after the acks gets a while to end before the
        # connections it posts through are closed (the server stops first, below).
        stack.push_async_callback(bot.after_ack.drain, HARNESS_DRAIN_S)
        web_app = create_web_app(
            bot.bolt,
            metrics=bot.metrics,
            gauges=gauges(store, bot.metrics),
            signing_secret=SIGNING_SECRET,
            readiness=readiness(DatabaseWatch(store), metrics=bot.metrics),
        )
        server = WebServer(web_app, "127.0.0.1", 0)
        await server.start()
        stack.push_async_callback(server.stop)
        digest = DigestRunner(settings, store, cluster_client, bot, worker_name())
        yield RunningBot(
            f"http://127.0.0.1:{server.port}", slack, cluster, http,
            lambda: digest(everything=True), bot.after_ack,
        )  # fmt: skip
