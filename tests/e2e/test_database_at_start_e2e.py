"""A database that does not answer at start is not a settings problem: `serve` starts, is alive,
says `degraded` with `database` on `/readyz` and retries (one WARNING each); once PostgreSQL
answers (through a proxy the test stops and starts) it works without a restart, and an outage
later degrades it again. `digest --once` exits 1 naming DATABASE_URL; a URL the store cannot
use stays a settings error (exit 2)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from bot.testing.harness import API_KEY, SIGNING_SECRET, process_env
from bot.testing.loopback import free_port
from bot.testing.sample_cluster import SampleCluster
from bot.testing.signing import sign, slash_command_body
from bot.testing.slack_stand_in import SlackStandIn
from bot.testing.tcp_proxy import TcpProxy
from tests.e2e.test_cli_e2e import run_cli
from tests.e2e.test_readiness_e2e import _readyz
from tests.postgres import NO_POSTGRES, POSTGRES_URL, new_database


def _env(cluster: SampleCluster, slack: SlackStandIn, database_url: str) -> dict[str, str]:
    return process_env(cluster, slack, database_url, DIGEST_TICK_SECONDS="1")


def _through(proxy: TcpProxy, url: str) -> str:
    """`url` with its host and port those of `proxy`."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    netloc = f"{user}@127.0.0.1:{proxy.port}" if user else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@contextlib.asynccontextmanager
async def _serving(env: dict[str, str], cwd: Path, port: int) -> AsyncIterator[list[str]]:
    """`serve` as a real process; yields its stderr lines so far (read as they come)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port),
        env=env, cwd=cwd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []

    async def read() -> None:
        assert process.stderr is not None
        while line := await process.stderr.readline():
            lines.append(line.decode())

    reading = asyncio.create_task(read())
    try:
        yield lines
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)
        await reading
    assert process.returncode == 0, "".join(lines)


async def _until(
    http: httpx.AsyncClient, url: str, wanted: tuple[int, dict[str, object]], seconds: float
) -> str:
    """Probe until `/readyz` says `wanted`; the metrics then."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        status, body, metrics = await _readyz(http, url)
        if (status, body) == wanted:
            return metrics
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/readyz still says {status} {body}, not {wanted}")
        await asyncio.sleep(0.1)


DEGRADED = (200, {"status": "degraded", "reasons": ["database"]})
READY = (200, {"status": "ready"})


@pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)
async def test_serve_starts_without_its_database_and_works_once_it_answers(
    tmp_path: Path,
) -> None:
    async with (
        new_database("algo_start") as (_, database_url),
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
        httpx.AsyncClient(timeout=5) as http,
    ):
        cluster.load_sample()
        target = urlsplit(database_url)
        assert target.hostname is not None
        proxy = TcpProxy(target.hostname, target.port or 5432)  # down: nothing listens
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = _env(cluster, slack, _through(proxy, database_url))
        async with proxy, _serving(env, tmp_path, port) as stderr:
            status, body, _ = await _readyz(http, url)
            assert (status, body) == DEGRADED  # signed in to Slack, the database not there
            # A scrape says so by itself (an alert on the gauge needs no one probing /readyz).
            await proxy.start()
            await _until(http, url, READY, seconds=20)
            await proxy.stop()
            metrics = (await http.get(f"{url}/metrics")).text
            assert 'algo_errors_dependency_up{part="database"} 0.0' in metrics
            assert (await http.get(f"{url}/healthz")).status_code == 200
            for _ in range(100):
                if any("warning" in line.lower() and "DATABASE_URL" in line for line in stderr):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("no WARNING naming DATABASE_URL:\n" + "".join(stderr))

            await proxy.start()  # PostgreSQL answers: the store opens without a restart
            metrics = await _until(http, url, READY, seconds=20)
            assert 'algo_errors_dependency_up{part="database"} 1.0' in metrics
            body_text = slash_command_body(
                "subscribe acme/image_tagger", response_url=slack.response_url(),
                channel_id="C_GENERAL", user_id="U_ALICE",
            )  # fmt: skip
            ack = await http.post(
                f"{url}/slack/events", content=body_text, headers=sign(SIGNING_SECRET, body_text)
            )
            assert ack.status_code == 200
            await slack.wait_for(lambda s: len(s.top_level("C_GENERAL")) == 1, timeout=10)
            assert "subscribed this channel" in slack.top_level("C_GENERAL")[0].text

            await proxy.stop()  # an outage while serving
            await _until(http, url, DEGRADED, seconds=10)
            await proxy.start()
            await _until(http, url, READY, seconds=10)
        assert not [line for line in stderr if line.startswith("Traceback")], "".join(stderr)


async def test_digest_once_without_its_database_exits_1_naming_it(tmp_path: Path) -> None:
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn() as slack,
    ):
        nowhere = f"postgresql://bot@127.0.0.1:{free_port()}/algo_errors"
        code, _, err = await run_cli(tmp_path, _env(cluster, slack, nowhere), "digest", "--once")
        assert code == 1, err
        assert err.startswith("failed: DATABASE_URL: "), err
        assert "Traceback" not in err

        code, _, err = await run_cli(
            tmp_path, _env(cluster, slack, "mysql://x"), "digest", "--once"
        )
        assert code == 2, err
        assert err.startswith("configuration error: DATABASE_URL: "), err
        code, _, err = await run_cli(
            tmp_path, _env(cluster, slack, "mysql://x"), "serve", "--port", "0"
        )
        assert code == 2, err
        assert "DATABASE_URL" in err
