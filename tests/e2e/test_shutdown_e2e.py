"""SIGTERM to a real `digest` worker in the middle of a run with several posts: it takes no new
work, ends within the drain time with exit 0, and whatever it had not posted is posted by a
later run: in the end each new kind of error has exactly one alert and one trace reply.

The post in flight at the signal either comes back (the run stops before its next post and
hands its lease over at once) or stays stuck in Slack (the run is cut short at the end of the
drain, like a crash: the next run adopts what Slack kept once the lease ran out)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.store.repository import Store
from bot.testing.harness import API_KEY, SIGNING_SECRET, process_env, running_bot
from bot.testing.loopback import free_port
from bot.testing.sample_cluster import SampleCluster
from bot.testing.signing import sign, slash_command_body
from bot.testing.slack_records import HeldCall
from bot.testing.slack_stand_in import SlackStandIn
from bot.wiring.run import DRAIN_S
from tests.e2e.test_cli_e2e import run_cli
from tests.e2e.test_crash_e2e import _expire_leases
from tests.e2e.test_subscriptions_e2e import CHANNEL, _alerts, _kinds

KINDS = 3
MARGIN_S = 10.0
"""Beyond the drain: a loaded machine's start of Python and closing of connections."""


async def _worker_with_a_run_going(
    tmp_path: Path, cluster: SampleCluster, slack: SlackStandIn, holds: int
) -> tuple[asyncio.subprocess.Process, dict[str, str], list[HeldCall]]:
    """A subscription due now with KINDS new kinds of error, a hold on each of the run's first
    `holds` posts, and a `digest` worker started."""
    database = tmp_path / "bot.db"
    cluster.load_sample()
    async with running_bot(database=database, cluster=cluster, slack=slack) as bot:
        await bot.command("subscribe acme/image_tagger every:1h")
        await slack.wait_for(lambda s: len(s.messages) == 1)
    async with await Store.open(f"sqlite:///{database}") as store:  # due now
        past = datetime.now(UTC) - timedelta(minutes=1)
        await store.upsert_subscription(
            CHANNEL, "acme/image_tagger", "every:1h", "Europe/Berlin", "U_ALICE", past, past
        )
    cluster.append_records("acme", "image_tagger", _kinds(KINDS))
    env = process_env(cluster, slack, f"sqlite:///{database}", DIGEST_TICK_SECONDS="1")
    held = [slack.hold("chat.postMessage") for _ in range(holds)]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "digest", "--host", "127.0.0.1", "--port", str(free_port()),
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    return process, env, held


async def _terminated(process: asyncio.subprocess.Process) -> tuple[int, float, str]:
    """SIGTERM; the exit code, the seconds it took and stderr."""
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(process.communicate(), timeout=DRAIN_S + MARGIN_S)
    assert process.returncode is not None
    return process.returncode, time.monotonic() - signalled, err.decode()


async def _each_kind_told_once(tmp_path: Path, env: dict[str, str], slack: SlackStandIn) -> None:
    """A later run posts what is missing; then each kind has one alert and one trace reply."""
    code, _, err = await run_cli(tmp_path, env, "digest", "--once", "--all")
    assert code == 0, err
    await slack.wait_idle()
    alerts = _alerts(slack)
    assert len(alerts) == KINDS, slack.summary()
    assert len({a.text for a in alerts}) == KINDS
    for alert in alerts:
        assert len(slack.thread(alert.ts)) == 1, slack.summary()
    assert len(slack.messages) == 1 + 2 * KINDS  # the confirmation, alerts and replies


async def test_sigterm_mid_run_ends_the_post_in_flight_and_hands_the_rest_over(
    tmp_path: Path,
) -> None:
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
    ):
        process, env, (first, second) = await _worker_with_a_run_going(
            tmp_path, cluster, slack, holds=2
        )
        try:
            await first.arrived(timeout=30)
            first.release()
            await second.arrived(timeout=30)  # the first alert's trace reply is in flight
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            second.release()  # … and comes back: the run stops before its next post
            _, err = await asyncio.wait_for(process.communicate(), timeout=DRAIN_S + MARGIN_S)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == 0, err.decode()
        assert "Traceback" not in err.decode()
        assert len(slack.messages) == 1 + 2, slack.summary()  # no new post after the signal
        # Its lease was released: the next run needs no minute's wait to take over.
        await _each_kind_told_once(tmp_path, env, slack)


async def test_sigterm_with_a_post_stuck_in_slack_abandons_it_within_the_drain(
    tmp_path: Path,
) -> None:
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
    ):
        process, env, (stuck,) = await _worker_with_a_run_going(tmp_path, cluster, slack, holds=1)
        try:
            await stuck.arrived(timeout=30)  # Slack has the first alert; its answer never comes
            code, took, err = await _terminated(process)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert code == 0, err
        assert took <= DRAIN_S + MARGIN_S / 2, err
        assert "cut short" in err
        assert "Traceback" not in err
        stuck.release()
        assert len(slack.messages) == 1 + 1, slack.summary()
        _expire_leases(tmp_path / "bot.db")  # a minute later, as after a crash
        await _each_kind_told_once(tmp_path, env, slack)
        with sqlite3.connect(tmp_path / "bot.db") as connection:  # nothing left open
            assert connection.execute("SELECT COUNT(*) FROM post_intents").fetchone() == (0,)


@pytest.mark.parametrize("lookup_s", [2.0, 7.0])
async def test_a_command_acked_before_sigterm_still_gets_its_answer(
    tmp_path: Path, lookup_s: float
) -> None:
    """A deploy replaces `serve` right after a query was acked, its lookup still going: the
    process waits for that work before it exits, so the channel gets the answer; a lookup
    of 7 s too, since the server stopped at once (the drain counts from the signal, and a
    query cannot be resumed by another run)."""
    async with SampleCluster(authorization=f"Simple {API_KEY}") as cluster, SlackStandIn() as slack:
        cluster.load_sample()
        cluster.latency_s = lookup_s  # the lookup is still going when the signal comes
        port = free_port()
        env = process_env(cluster, slack, f"sqlite:///{tmp_path / 'bot.db'}")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--no-scheduler", "--host", "127.0.0.1",
            "--port", str(port), env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with httpx.AsyncClient(timeout=5) as http:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if (await http.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            body = slash_command_body("acme/image_tagger", response_url=slack.response_url())
            headers = sign(SIGNING_SECRET, body)
            ack = await http.post(f"{url}/slack/events", content=body, headers=headers)
            assert ack.status_code == 200
            assert "Looking up" in ack.json()["text"]
        await asyncio.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, err = await asyncio.wait_for(process.communicate(), timeout=DRAIN_S + MARGIN_S)
        took = time.monotonic() - started
        assert process.returncode == 0, err.decode()
        assert took < DRAIN_S  # the answer came well within the drain
        parents = slack.top_level("C_GENERAL")
        assert len(parents) == 1, err.decode()  # the answer, posted after the signal
        assert "acme/image_tagger" in parents[0].text
        assert "Traceback" not in err.decode()
