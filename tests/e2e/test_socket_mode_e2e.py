"""`/algo-errors` end to end in Socket Mode: the real `serve()` with SLACK_APP_TOKEN set and no
signing secret, connected to the Slack stand-in over a WebSocket the way slack-bolt's aiohttp
AsyncSocketModeHandler connects to Slack. Assertions are on what Slack received."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings, load_settings
from bot.slack.server import WebServer
from bot.testing.harness import API_KEY, PACE_HEADROOM
from bot.testing.sample_cluster import SampleCluster
from bot.testing.signing import home_opened_event
from bot.testing.slack_stand_in import TEST_SPEED, SlackStandIn
from bot.wiring import build as wiring_build
from bot.wiring import run as wiring_run


@dataclass
class SocketModeBot:
    """`serve()` running in Socket Mode beside its stand-ins; `url` is its HTTP surface."""

    url: str
    slack: SlackStandIn
    cluster: SampleCluster
    http: httpx.AsyncClient
    task: asyncio.Task[None]
    server: WebServer


@pytest.fixture
def web_servers(monkeypatch: pytest.MonkeyPatch) -> list[WebServer]:
    """The `WebServer`s `serve()` creates: their port (bound to 0) and what they leave open."""
    created: list[WebServer] = []

    class RecordingWebServer(WebServer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(wiring_run, "WebServer", RecordingWebServer)
    # The harness's pace on the stand-in's faster clock.
    interval = wiring_build.POST_INTERVAL_S * PACE_HEADROOM / TEST_SPEED
    monkeypatch.setattr(wiring_build, "POST_INTERVAL_S", interval)
    return created


async def _connected(slack: SlackStandIn, task: asyncio.Task[None]) -> None:
    """Wait for the Socket Mode connection; fail at once with serve()'s error if it stopped."""
    connected = asyncio.ensure_future(slack.socket_connected())
    await asyncio.wait({connected, task}, return_when=asyncio.FIRST_COMPLETED)
    if not connected.done():
        connected.cancel()
        await task  # raises what made serve() stop
        raise AssertionError("serve() returned before connecting over Socket Mode")
    await connected


async def _until_healthy(http: httpx.AsyncClient, url: str) -> None:
    """`serve()` creates the server (and its port) just before uvicorn starts accepting."""
    deadline = time.monotonic() + 5.0
    while True:
        with contextlib.suppress(httpx.TransportError):
            if (await http.get(f"{url}/healthz")).status_code == 200:
                return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{url}/healthz did not answer 200")
        await asyncio.sleep(0.02)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _still_serving(server: WebServer) -> bool:
    uvicorn_server = server._server
    return uvicorn_server.started and any(s.is_serving() for s in uvicorn_server.servers)


def _settings(cluster: SampleCluster, slack: SlackStandIn, tmp_path: Path) -> Settings:
    settings = load_settings(
        {
            "ALGORITHMIA_API_URL": cluster.base_url,
            "ALGORITHMIA_API_KEY": API_KEY,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_APP_TOKEN": "xapp-test",
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        }
    )
    assert settings.slack_signing_secret is None  # Socket Mode must not need it
    return settings


async def _web_server(web_servers: list[WebServer], task: asyncio.Task[None]) -> WebServer:
    """The one `serve()` creates, from its start."""
    for _ in range(500):
        if web_servers or task.done():
            break
        await asyncio.sleep(0.01)
    (server,) = web_servers
    return server


@pytest.fixture
async def bot(web_servers: list[WebServer], tmp_path: Path) -> AsyncIterator[SocketModeBot]:
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
        httpx.AsyncClient(timeout=10) as http,
    ):
        cluster.load_sample()
        settings = _settings(cluster, slack, tmp_path)
        task = asyncio.create_task(wiring_run.serve(settings, "127.0.0.1", 0))
        try:
            await _connected(slack, task)
            server = await _web_server(web_servers, task)
            url = f"http://127.0.0.1:{server.port}"
            await _until_healthy(http, url)
            yield SocketModeBot(url, slack, cluster, http, task, server)
        finally:
            await _cancel(task)


# -- the bot in Socket Mode ----------------------------------------------------------------


async def test_events_over_socket_mode_publish_the_home_tab_and_any_other_is_acked(
    bot: SocketModeBot,
) -> None:
    await bot.slack.send_event(home_opened_event("U_ALICE", None))
    await bot.slack.wait_for(lambda s: "U_ALICE" in s.home_views)
    assert "No open alerts in your channels" in str(bot.slack.home_views["U_ALICE"]["blocks"])
    # An event no listener wants is acknowledged too (an unacked envelope is redelivered).
    await bot.slack.send_event({"type": "member_joined_channel", "user": "U_X"})
    assert len(bot.slack.socket_acks) == 2


async def test_query_over_socket_mode_posts_parent_and_thread(bot: SocketModeBot) -> None:
    (opened,) = bot.slack.calls_to("apps.connections.open")
    assert opened.status == 200
    assert opened.response["ok"] is True

    ack = await bot.slack.send_slash_command("acme/image_tagger")
    assert ack["response_type"] == "ephemeral"
    assert "Looking up the recent errors of acme/image_tagger" in ack["text"]

    await bot.slack.wait_for(lambda s: len(s.messages) == 21)
    await bot.slack.wait_idle()
    (parent,) = bot.slack.top_level("C_GENERAL")
    assert parent.thread_ts is None
    assert "/algorithms/acme/image_tagger|acme/image_tagger>*: 80 errors in 25 groups" in str(
        parent.blocks
    )
    replies = bot.slack.thread(parent.ts)
    assert len(replies) == 20
    assert all(reply.thread_ts == parent.ts for reply in replies)
    assert len(bot.slack.messages) == 1 + len(replies)
    assert bot.slack.ephemerals == []
    assert bot.cluster.last_authorization == f"Simple {API_KEY}"
    # Bolt's authorization was filled from the start-up check: no auth.test per request.
    assert len(bot.slack.calls_to("auth.test")) == 1
    (acked,) = bot.slack.socket_acks
    assert acked["payload"] == ack


async def test_bad_text_gets_usage_in_the_ack_and_nothing_posted(bot: SocketModeBot) -> None:
    ack = await bot.slack.send_slash_command("acme/image_tagger since:forever")
    assert ack["response_type"] == "ephemeral"
    assert "`since:forever` is not a duration" in str(ack["blocks"][0])
    assert "shows an Algorithmia algorithm's recent errors" in str(ack["blocks"][1])
    await bot.slack.wait_idle(quiet_s=0.2)
    assert bot.slack.messages == []
    assert bot.slack.ephemerals == []
    assert bot.cluster.requests == []


async def test_healthz_is_served_and_there_is_no_slack_events_route(bot: SocketModeBot) -> None:
    health = await bot.http.get(f"{bot.url}/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    events = await bot.http.post(
        f"{bot.url}/slack/events",
        content="command=%2Falgo-errors&text=acme%2Fimage_tagger",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert events.status_code == 404


async def test_cancelling_serve_closes_the_socket_mode_connection(bot: SocketModeBot) -> None:
    assert bot.slack.socket_count == 1
    await _cancel(bot.task)
    await bot.slack.wait_for(lambda s: s.socket_count == 0)


async def test_cancelling_serve_stops_serving_http(bot: SocketModeBot) -> None:
    assert gc.get_freeze_count() > 0  # serving: what start-up built is out of the full passes
    await _cancel(bot.task)
    assert not _still_serving(bot.server)
    assert gc.get_freeze_count() == 0  # stopped: collectable again


async def test_healthz_is_served_before_slack_answers_and_the_socket_follows(
    web_servers: list[WebServer], tmp_path: Path
) -> None:
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
        httpx.AsyncClient(timeout=10) as http,
    ):
        # Slack is down at start and at the retry a second later, then back (3 s later).
        slack.fail_next("auth.test", status=503, times=2)
        task = asyncio.create_task(
            wiring_run.serve(_settings(cluster, slack, tmp_path), "127.0.0.1", 0)
        )
        try:
            url = f"http://127.0.0.1:{(await _web_server(web_servers, task)).port}"
            await _until_healthy(http, url)  # alive before Slack answers
            ready = await http.get(f"{url}/readyz")
            assert (ready.status_code, ready.json()) == (
                503, {"status": "not ready", "reasons": ["slack", "socket"]},
            )  # fmt: skip
            assert slack.socket_count == 0
            metrics = (await http.get(f"{url}/metrics")).text
            assert 'algo_errors_dependency_up{part="socket"} 0.0' in metrics
            await _connected(slack, task)  # once signed in
            for _ in range(200):
                ready = await http.get(f"{url}/readyz")
                if ready.status_code == 200:
                    break
                await asyncio.sleep(0.05)
            assert ready.json() == {"status": "ready"}
            assert len(slack.calls_to("auth.test")) == 3
            ack = await slack.send_slash_command("help")  # and it takes commands
            assert "shows an Algorithmia algorithm's recent errors" in str(ack)
        finally:
            await _cancel(task)


# -- the stand-in's Socket Mode ------------------------------------------------------------


async def test_apps_connections_open_needs_an_app_level_token() -> None:
    async with SlackStandIn() as slack:
        client = AsyncWebClient(base_url=slack.base_url)
        with pytest.raises(SlackApiError) as bot_token:
            await client.apps_connections_open(app_token="xoxb-test")
        assert bot_token.value.response["error"] == "not_allowed_token_type"
        with pytest.raises(SlackApiError) as no_token:
            await AsyncWebClient(base_url=slack.base_url).api_call("apps.connections.open")
        assert no_token.value.response["error"] == "not_authed"
        opened = await client.apps_connections_open(app_token="xapp-test")
        assert opened["url"].startswith(f"ws://127.0.0.1:{slack.root_url.rsplit(':', 1)[1]}/")


async def test_socket_greets_with_hello_and_unknown_tickets_are_refused() -> None:
    async with SlackStandIn() as slack, aiohttp.ClientSession() as session:
        opened = await AsyncWebClient(base_url=slack.base_url).apps_connections_open(
            app_token="xapp-test"
        )
        url = str(opened["url"])
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url.replace("ticket=", "ticket=x"))
        async with session.ws_connect(url) as ws:
            await slack.socket_connected(timeout=1.0)
            hello = json.loads(await ws.receive_str(timeout=1.0))
            assert hello["type"] == "hello"
            assert hello["num_connections"] == 1
            assert hello["connection_info"] == {"app_id": "A0001"}

            async def acknowledge() -> None:
                envelope = json.loads(await ws.receive_str(timeout=1.0))
                assert envelope["type"] == "slash_commands"
                assert envelope["accepts_response_payload"] is True
                payload = envelope["payload"]
                assert (payload["command"], payload["text"]) == ("/algo-errors", "help")
                assert payload["response_url"] == slack.response_url()
                await ws.send_json({"envelope_id": envelope["envelope_id"]})

            answering = asyncio.create_task(acknowledge())
            assert await slack.send_slash_command("help", timeout=1.0) == {}
            await answering
            with pytest.raises(AssertionError, match="no acknowledgement"):
                await slack.send_slash_command("help", timeout=0.05)
        assert len(slack.socket_acks) == 1
