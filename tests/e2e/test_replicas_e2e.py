"""Replicas on one PostgreSQL database: 3 `serve` (each with its scheduler) and 1 `digest`
worker, one of them killed with SIGKILL while digests post. Every new kind of error is alerted
once with one trace reply, every recurrence told once, and nothing stays stuck."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from bot.testing.harness import API_KEY, SIGNING_SECRET, running_bot
from bot.testing.loopback import free_port
from bot.testing.sample_cluster import SampleCluster
from bot.testing.slack_stand_in import SlackStandIn
from tests.e2e.test_subscriptions_e2e import _alerts, _kinds
from tests.postgres import NO_POSTGRES, POSTGRES_URL, execute, new_database

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)

CHANNELS = ("C_R1", "C_R2", "C_R3", "C_R4")
KINDS = 3


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    async with new_database("algo_replicas") as (_, url):
        yield url


async def _until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.2)


async def test_replicas_one_killed_tell_every_error_once(tmp_path: Path, database_url: str) -> None:
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn(member_of=CHANNELS, public=CHANNELS) as slack,
    ):
        cluster.load_sample()
        async with running_bot(database_url=database_url, cluster=cluster, slack=slack) as bot:
            for channel in CHANNELS:
                await bot.command("subscribe acme/image_tagger every:1m", channel=channel)
            await slack.wait_for(lambda s: len(s.messages) == len(CHANNELS), timeout=20)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "ALGORITHMIA_API_URL": cluster.base_url,
            "ALGORITHMIA_API_KEY": API_KEY,
            "SLACK_BOT_TOKEN": "xoxb-replica",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": database_url,
            "DIGEST_TICK_SECONDS": "1",
            "PORT": "0",  # the digest worker's /healthz and /metrics
            "LOG_LEVEL": "WARNING",
        }
        commands = [
            *(["serve", "--host", "127.0.0.1", "--port", str(free_port())] for _ in range(3)),
            ["digest"],
        ]
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", *command, cwd=tmp_path, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            for command in commands
        ]  # fmt: skip
        try:
            posts = len(slack.calls_to("chat.postMessage"))
            cluster.append_records("acme", "image_tagger", _kinds(KINDS))
            await execute("UPDATE subscriptions SET next_run_at = now()", database_url)
            # While the digests post, one replica dies; its leases run out a minute later.
            await _until(lambda: len(slack.calls_to("chat.postMessage")) >= posts + 3, 30)
            victim = processes[1]
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
            await execute(
                "UPDATE subscriptions SET lease_until = now() "
                f"WHERE lease_owner LIKE '%:{victim.pid}:%'",
                database_url,
            )

            def told() -> bool:
                return all(
                    len(_alerts(slack, c)) == KINDS
                    and all(len(slack.thread(a.ts)) == 1 for a in _alerts(slack, c))
                    for c in CHANNELS
                )

            await _until(told, 60)
            # One more occurrence of each kind: one reply each in its alert's thread.
            again = [dict(record, request_id=f"req-{uuid.uuid4()}") for record in _kinds(KINDS)]
            cluster.append_records("acme", "image_tagger", again)
            await execute("UPDATE subscriptions SET next_run_at = now()", database_url)

            def recurred() -> bool:
                return all(
                    len(slack.thread(a.ts)) == 2 for c in CHANNELS for a in _alerts(slack, c)
                )

            await _until(recurred, 60)
            await asyncio.sleep(3)  # a few more ticks: nothing more is said
            await slack.wait_idle()
            for channel in CHANNELS:
                alerts = _alerts(slack, channel)
                assert len(alerts) == KINDS, slack.summary()
                assert len({a.text for a in alerts}) == KINDS
                assert all(len(slack.thread(a.ts)) == 2 for a in alerts), slack.summary()
            leftovers = await asyncpg.connect(database_url)
            try:
                assert await leftovers.fetchval("SELECT count(*) FROM post_intents") == 0
            finally:
                await leftovers.close()
        finally:
            for process in processes:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
