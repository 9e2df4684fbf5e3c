"""Subscriptions end to end over real HTTP: subscribe, digests, alert threads, resolve and
mute from Slack, a restart, unsubscribe. Digests run through the scheduler's own tick."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bot.store.repository import Store
from bot.testing.harness import API_KEY, RunningBot, running_bot
from bot.testing.loopback import free_port
from bot.testing.sample_cluster import SampleCluster, fresh_record
from bot.testing.slack_stand_in import PostedMessage, SlackStandIn
from tests.e2e.test_cli_e2e import run_cli

CHANNEL = "C_GENERAL"


def _fresh(bug: str) -> dict[str, Any]:
    return fresh_record(bug, int(time.time() * 1000))


def _alerts(slack: SlackStandIn, channel: str = CHANNEL) -> list[PostedMessage]:
    """The channel's alert parents (the top-level messages with buttons)."""
    return [m for m in slack.top_level(channel) if any(b["type"] == "actions" for b in m.blocks)]


def _alert_about(slack: SlackStandIn, text: str) -> PostedMessage:
    return next(m for m in _alerts(slack) if text in m.text)


def _fields(message: PostedMessage) -> list[str]:
    return [f["text"] for block in message.blocks for f in block.get("fields", [])]


async def _settle(bot: RunningBot) -> None:
    await bot.slack.wait_idle(quiet_s=0.2)


async def test_subscription_lifecycle(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
    ):
        cluster.load_sample()
        await _first_life(cluster, slack, database)
        # A restart: the subscription, seen records and alert threads live in the database.
        await _second_life(cluster, slack, database)


async def _first_life(cluster: SampleCluster, slack: SlackStandIn, database: Path) -> None:
    async with running_bot(database=database, cluster=cluster, slack=slack) as bot:
        ack = await bot.command("subscribe acme/image_tagger every:5m")
        assert "Subscribing this channel to acme/image_tagger" in ack.json()["text"]
        await bot.slack.wait_for(lambda s: len(s.top_level(CHANNEL)) == 1)
        confirmation = bot.slack.top_level(CHANNEL)[0]
        assert "subscribed this channel to *acme/image_tagger*, `every:5m` (Europe/Berlin)" in (
            confirmation.text
        )
        assert "80 current errors marked as seen" in str(confirmation.blocks)
        assert bot.slack.calls_to("users.info")

        # The first digest holds only new errors: none yet.
        report = await bot.digest()
        assert (len(report.ran), report.posted) == (1, 0)
        assert len(bot.slack.messages) == 1

        # Two new kinds of error: one alert each, oldest first, details in the thread.
        bot.cluster.append_records("acme", "image_tagger", [_fresh("py-notify-channel-id-int")])
        bot.cluster.append_records(
            "acme", "image_tagger", [_fresh("node-jimp-read-not-a-function")]
        )
        await bot.digest()
        await _settle(bot)
        alerts = _alerts(bot.slack)
        assert len(alerts) == 2
        notify = _alert_about(bot.slack, "invalid literal for int()")
        assert len(bot.slack.thread(notify.ts)) == 1
        assert "<!here>" not in notify.text  # escaped: the alert cannot ping the channel

        # A recurrence: a reply in its thread and the alert's counters updated.
        bot.cluster.append_records("acme", "image_tagger", [_fresh("py-notify-channel-id-int")])
        await bot.digest()
        await _settle(bot)
        replies = bot.slack.thread(notify.ts)
        assert len(replies) == 2
        assert not replies[-1].reply_broadcast
        assert "*Occurrences*\n2" in _fields(notify)
        assert len(_alerts(bot.slack)) == 2  # no new top-level alert

        # Resolved from Slack, then it comes back: a regression, broadcast to the channel.
        assert (await bot.click(notify, "group_resolve")).status_code == 200
        await bot.slack.wait_for(lambda s: "*Resolved* by <@U_ALICE>" in str(notify.blocks))
        bot.cluster.append_records("acme", "image_tagger", [_fresh("py-notify-channel-id-int")])
        await bot.digest()
        await _settle(bot)
        regression = bot.slack.thread(notify.ts)[-1]
        assert regression.reply_broadcast
        assert "Regression" in regression.text
        assert "*Regressed*" in str(notify.blocks)

        # Muted: later occurrences post nothing, the counters still move.
        await bot.click(notify, "group_mute", selected="24h")
        await bot.slack.wait_for(lambda s: "*Muted* by <@U_ALICE> until" in str(notify.blocks))
        posts_before = len(bot.slack.messages)
        bot.cluster.append_records("acme", "image_tagger", [_fresh("py-notify-channel-id-int")])
        await bot.digest()
        await _settle(bot)
        assert len(bot.slack.messages) == posts_before
        assert "*Occurrences*\n4" in _fields(notify)


async def _second_life(cluster: SampleCluster, slack: SlackStandIn, database: Path) -> None:
    async with running_bot(database=database, cluster=cluster, slack=slack) as bot:
        await bot.command("list")
        await bot.slack.wait_for(lambda s: any("subscriptions (1)" in e.text for e in s.ephemerals))
        listing = bot.slack.ephemerals[-1]
        assert "*acme/image_tagger*: `every:5m` (Europe/Berlin)" in str(listing.blocks)
        report = await bot.digest()
        assert report.posted == 0  # nothing reported twice after the restart

        await bot.command("unsubscribe acme/image_tagger")
        await bot.slack.wait_for(lambda s: "unsubscribed this channel" in s.messages[-1].text)
        posts_before = len(bot.slack.messages)
        bot.cluster.append_records("acme", "image_tagger", [_fresh("rs-png-invalid-signature")])
        report = await bot.digest()
        assert report.ran == []
        assert len(bot.slack.messages) == posts_before


async def test_subscribing_to_an_unknown_algorithm_stores_nothing() -> None:
    async with running_bot() as bot:
        await bot.command("subscribe acme/nope")
        await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1)
        assert "There is no algorithm *acme/nope*" in bot.slack.ephemerals[0].text
        assert bot.slack.messages == []
        await bot.command("list")
        await bot.slack.wait_for(lambda s: len(s.ephemerals) == 2)
        assert "no subscriptions" in bot.slack.ephemerals[1].text


async def test_a_private_channel_cannot_subscribe_without_the_bot() -> None:
    async with running_bot() as bot:
        await bot.command("subscribe acme/image_tagger", channel="G_PRIVATE")
        await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1)
        assert "/invite" in bot.slack.ephemerals[0].text
        await bot.command("list", channel="G_PRIVATE")
        await bot.slack.wait_for(lambda s: len(s.ephemerals) == 2)
        assert "no subscriptions" in bot.slack.ephemerals[1].text


def _kinds(count: int) -> list[dict[str, Any]]:
    """`count` new records, each a different kind of error (no trace, different words)."""
    now_ms = int(time.time() * 1000)
    words = [f"{chr(65 + i // 26)}{chr(97 + i % 26)}" for i in range(count)]
    return [
        {"created_at": now_ms - i, "request_id": f"req-{uuid.uuid4()}", "algoversion": "2.0.1",
         "error": f"error:\ncould not load shard {word}\nstacktrace:\nNone",
         "error_type": "AlgorithmError"}
        for i, word in enumerate(words)
    ]  # fmt: skip


async def test_a_burst_of_30_new_kinds_with_rate_limits_posts_each_once() -> None:
    async with running_bot() as bot:
        await bot.command("subscribe acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.messages) == 1)
        bot.cluster.append_records("acme", "image_tagger", _kinds(30))
        bot.slack.fail_next("chat.postMessage", status=429, retry_after=1, after=7)
        bot.slack.fail_next("chat.postMessage", status=429, retry_after=1, after=20)
        report = await bot.digest()
        await _settle(bot)
        assert report.failed == {}
        alerts = _alerts(bot.slack)
        assert len(alerts) == 30
        assert len({a.text for a in alerts}) == 30  # none twice
        assert all(len(bot.slack.thread(a.ts)) == 1 for a in alerts)
        limited = [c for c in bot.slack.calls_to("chat.postMessage") if c.status == 429]
        assert len(limited) == 2
        assert (await bot.digest()).posted == 0  # all 30 counted as reported


async def test_digest_once_from_the_command_line(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    async with running_bot(database=database) as bot:
        await bot.command("subscribe acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.messages) == 1)
        bot.cluster.append_records("acme", "image_tagger", _kinds(2))
        env = {
            "ALGORITHMIA_API_URL": bot.cluster.base_url,
            "ALGORITHMIA_API_KEY": API_KEY,
            "SLACK_BOT_TOKEN": "xoxb-cli",
            "SLACK_API_URL": bot.slack.base_url,
            "DATABASE_URL": f"sqlite:///{database}",
        }
        code, out, err = await run_cli(tmp_path, env, "digest", "--once", "--all")
        assert (code, out.strip()) == (0, "digest: 1 ran, 0 failed, 2 posted"), err
        assert len(_alerts(bot.slack)) == 2
        bot.cluster.down = True
        code, out, err = await run_cli(tmp_path, env, "digest", "--once", "--all")
        assert code == 1
        assert "failed: acme/image_tagger in C_GENERAL" in err
        code, _, err = await run_cli(tmp_path, env, "digest", "--all")
        assert (code, err.strip()) == (2, "error: --all goes with --once")


async def _run_for(
    env: dict[str, str], *args: str, slack: SlackStandIn, until: Any, seconds: float
) -> None:
    """Run `algo-errors-bot ARGS` until `until(slack)` holds or `seconds` pass, then SIGTERM
    (an orderly exit, 0)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args,
        env={"PATH": os.environ.get("PATH", ""), **env},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        with contextlib.suppress(AssertionError):  # timing out is an answer too
            await slack.wait_for(until, timeout=seconds)
    finally:
        process.terminate()
        _, err = await process.communicate()
    assert process.returncode == 0, err.decode()


async def test_serve_runs_digests_on_its_scheduler_unless_told_not_to(tmp_path: Path) -> None:
    database = tmp_path / "bot.db"
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
    ):
        cluster.load_sample()
        async with running_bot(database=database, cluster=cluster, slack=slack) as bot:
            await bot.command("subscribe acme/image_tagger every:1m")
            await slack.wait_for(lambda s: len(s.messages) == 1)
        async with await Store.open(f"sqlite:///{database}") as store:  # make it due now
            past = datetime.now(UTC) - timedelta(minutes=1)
            await store.upsert_subscription(
                CHANNEL, "acme/image_tagger", "every:1m", "Europe/Berlin", "U_ALICE", past, past
            )
        cluster.append_records("acme", "image_tagger", _kinds(1))
        env = {
            "ALGORITHMIA_API_URL": cluster.base_url, "ALGORITHMIA_API_KEY": API_KEY,
            "SLACK_BOT_TOKEN": "xoxb-serve", "SLACK_SIGNING_SECRET": "s",
            "SLACK_API_URL": slack.base_url, "DATABASE_URL": f"sqlite:///{database}",
            "DIGEST_TICK_SECONDS": "1",
        }  # fmt: skip
        serve = ("serve", "--host", "127.0.0.1", "--port", "0")
        sign_ins = len(slack.calls_to("auth.test"))
        await _run_for(
            env, *serve, "--no-scheduler", slack=slack, until=lambda s: len(s.messages) > 1,
            seconds=4,
        )  # fmt: skip
        assert len(slack.calls_to("auth.test")) > sign_ins  # it did start and reach Slack
        assert len(slack.messages) == 1  # the listener alone posts no digest
        await _run_for(env, *serve, slack=slack, until=lambda s: len(_alerts(s)) == 1, seconds=20)
        assert len(_alerts(slack)) == 1  # the scheduler's first tick ran the due digest
        # The worker form: the scheduler alone.
        async with await Store.open(f"sqlite:///{database}") as store:
            past = datetime.now(UTC) - timedelta(minutes=1)
            await store.upsert_subscription(
                CHANNEL, "acme/image_tagger", "every:1m", "Europe/Berlin", "U_ALICE", past, past
            )
        cluster.append_records("acme", "image_tagger", [_fresh("rs-png-invalid-signature")])
        port = free_port()
        worker = ("digest", "--host", "127.0.0.1", "--port", str(port))
        probed: dict[str, tuple[int, str]] = {}

        async def probe() -> None:  # the worker can be probed and scraped like `serve`
            async with httpx.AsyncClient(timeout=2) as http:
                for _ in range(100):
                    try:
                        for path in ("/healthz", "/readyz", "/metrics"):
                            answer = await http.get(f"http://127.0.0.1:{port}{path}")
                            probed[path] = (answer.status_code, answer.text)
                        return
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)

        probing = asyncio.create_task(probe())
        await _run_for(
            env, *worker, slack=slack, seconds=20,
            until=lambda s: len(_alerts(s)) == 2 and probing.done(),  # alive until probed
        )  # fmt: skip
        await probing
        assert len(_alerts(slack)) == 2
        assert probed["/healthz"] == (200, '{"status":"ok"}')
        assert probed["/readyz"][0] == 200
        assert "algo_errors_" in probed["/metrics"][1]


async def test_one_algorithm_by_its_name_and_by_its_id_is_one_subscription() -> None:
    """`acme/image_tagger` and `id:<its uuid>` are one algorithm: a channel subscribed by one
    name is told so when it subscribes by the other, a new error is one alert, not two, and
    unsubscribing by either name ends the one subscription."""
    uuid = "3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8"  # the sample algorithm's (fixtures README)
    async with running_bot() as bot:
        await bot.command("subscribe acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.top_level(CHANNEL)) == 1)
        told = len(bot.slack.ephemerals)
        await bot.command(f"subscribe id:{uuid}")
        await bot.slack.wait_for(lambda s, n=told: len(s.ephemerals) == n + 1)
        assert (
            f"*id:{uuid}* is *acme/image_tagger*, which this channel is already subscribed"
            in bot.slack.ephemerals[-1].text
        )
        bot.cluster.append_records("acme", "image_tagger", [_fresh("py-notify-channel-id-int")])
        await bot.digest()
        await _settle(bot)
        assert len(_alerts(bot.slack)) == 1
        await bot.command(f"unsubscribe id:{uuid}")  # by its other name it goes too
        await bot.slack.wait_for(lambda s: "unsubscribed" in s.top_level(CHANNEL)[-1].text)
        assert "from *acme/image_tagger*" in bot.slack.top_level(CHANNEL)[-1].text
        told = len(bot.slack.ephemerals)
        await bot.command("list")
        await bot.slack.wait_for(lambda s, n=told: len(s.ephemerals) == n + 1)
        assert bot.slack.ephemerals[-1].text.startswith("This channel has no subscriptions")
