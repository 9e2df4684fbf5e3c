"""`kill -9` of a real `digest --once --all` at chosen moments, Slack keeping what it was sent:
the next run adopts what Slack holds and posts what it does not, so every new kind of error
ends with exactly one alert and one trace reply."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.testing.harness import API_KEY, process_env, running_bot
from bot.testing.sample_cluster import SampleCluster
from bot.testing.slack_stand_in import SlackStandIn
from tests.e2e.test_cli_e2e import run_cli
from tests.e2e.test_subscriptions_e2e import _alerts, _kinds

KINDS = 3


def _expire_leases(database: Path) -> None:
    """A minute later: the dead process's leases have run out."""
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE subscriptions SET lease_owner = NULL, lease_until = NULL")


# The digest posts, in order: alert 1, its trace reply, alert 2, its reply, alert 3, its reply.
MOMENTS = {
    "the first alert in flight": 1,
    "its trace reply in flight": 2,
    "between two alerts, the second in flight": 3,
    "the last trace reply in flight": 6,
}


@pytest.mark.parametrize("post", MOMENTS.values(), ids=MOMENTS.keys())
async def test_a_digest_killed_while_slack_takes_a_post_tells_everything_once(
    tmp_path: Path, post: int
) -> None:
    database = tmp_path / "bot.db"
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
    ):
        cluster.load_sample()
        async with running_bot(database=database, cluster=cluster, slack=slack) as bot:
            await bot.command("subscribe acme/image_tagger")
            await slack.wait_for(lambda s: len(s.messages) == 1)
        cluster.append_records("acme", "image_tagger", _kinds(KINDS))
        env = process_env(cluster, slack, f"sqlite:///{database}")
        holds = [slack.hold("chat.postMessage") for _ in range(post)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "digest", "--once", "--all",
            cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        for earlier in holds[:-1]:
            await earlier.arrived(timeout=30)
            earlier.release()
        await holds[-1].arrived(timeout=30)  # Slack has the post; the answer is held …
        process.send_signal(signal.SIGKILL)  # … and the process dies before reading it
        await process.wait()
        holds[-1].release()

        _expire_leases(database)
        code, out, err = await run_cli(tmp_path, env, "digest", "--once", "--all")
        assert code == 0, err
        await slack.wait_idle()
        alerts = _alerts(slack)
        assert len(alerts) == KINDS, slack.summary()
        assert len({a.text for a in alerts}) == KINDS  # each kind once
        for alert in alerts:
            replies = slack.thread(alert.ts)
            assert len(replies) == 1, slack.summary()  # its trace, once
        code, out, err = await run_cli(tmp_path, env, "digest", "--once", "--all")
        assert (code, out.strip()) == (0, "digest: 1 ran, 0 failed, 0 posted"), err
        assert len(slack.messages) == 1 + 2 * KINDS  # the confirmation, alerts and replies


async def test_a_digest_killed_while_slack_takes_a_notice_tells_it_once(tmp_path: Path) -> None:
    """§3.2: one notice when the cluster has failed three runs in a row, one when it recovers;
    the process killed while Slack takes each, the next run finds it and says nothing more."""
    database = tmp_path / "bot.db"
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
    ):
        cluster.load_sample()
        async with running_bot(database=database, cluster=cluster, slack=slack) as bot:
            await bot.command("subscribe acme/image_tagger")
            await slack.wait_for(lambda s: len(s.messages) == 1)
        env = process_env(cluster, slack, f"sqlite:///{database}")

        async def killed_while_slack_takes_a_post() -> None:
            hold = slack.hold("chat.postMessage")
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "digest", "--once", "--all",
                cwd=tmp_path, env=env,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            await hold.arrived(timeout=60)  # Slack has the notice; the answer is held …
            process.send_signal(signal.SIGKILL)  # … and the process dies before reading it
            await process.wait()
            hold.release()
            _expire_leases(database)

        def notices(words: str) -> list[str]:
            return [m.text for m in slack.top_level("C_GENERAL") if words in m.text]

        cluster.down = True
        for _ in range(2):
            code, _, err = await run_cli(tmp_path, env, "digest", "--once", "--all")
            assert code == 1, err
        await killed_while_slack_takes_a_post()  # the third failure's notice
        for _ in range(2):  # still down: the notice is found in the channel, not told again
            await run_cli(tmp_path, env, "digest", "--once", "--all")
        await slack.wait_idle()
        assert len(notices("could not reach the Algorithmia")) == 1, slack.summary()
        cluster.down = False
        await killed_while_slack_takes_a_post()  # the recovery's notice
        for _ in range(2):
            code, _, err = await run_cli(tmp_path, env, "digest", "--once", "--all")
            assert code == 0, err
        await slack.wait_idle()
        assert len(notices("work again, with everything")) == 1, slack.summary()
        assert len(notices("could not reach the Algorithmia")) == 1
