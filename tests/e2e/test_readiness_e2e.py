"""Slack unreachable at start is not a settings problem: `serve` starts, says `slack` on
`/readyz` (and `algo_errors_dependency_up{part="slack"} 0`) until Slack answers, then is ready;
`digest --once` exits 1 naming the part."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from bot.testing.harness import API_KEY, process_env
from bot.testing.loopback import free_port
from bot.testing.sample_cluster import SampleCluster
from bot.testing.slack_stand_in import SlackStandIn
from tests.e2e.test_cli_e2e import run_cli


def _env(cluster: SampleCluster, slack: SlackStandIn, tmp_path: Path) -> dict[str, str]:
    return process_env(cluster, slack, f"sqlite:///{tmp_path / 'bot.db'}")


async def _readyz(http: httpx.AsyncClient, url: str) -> tuple[int, dict[str, object], str]:
    """`/readyz` and `/metrics`, once the process serves."""
    for _ in range(200):
        try:
            ready = await http.get(f"{url}/readyz")
            metrics = await http.get(f"{url}/metrics")
            return ready.status_code, ready.json(), metrics.text
        except httpx.TransportError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} never answered")


async def test_serve_waits_for_slack_and_says_so_on_readyz(tmp_path: Path) -> None:
    async with SampleCluster(authorization=f"Simple {API_KEY}") as cluster, SlackStandIn() as slack:
        slack.fail_next("auth.test", status=503)  # Slack is down at start, then back
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--no-scheduler", env=_env(cluster, slack, tmp_path), cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                url = f"http://127.0.0.1:{port}"
                status, body, metrics = await _readyz(http, url)
                assert (status, body) == (503, {"status": "not ready", "reasons": ["slack"]})
                assert 'algo_errors_dependency_up{part="slack"} 0.0' in metrics
                assert (await http.get(f"{url}/healthz")).status_code == 200  # alive all along
                for _ in range(100):  # the first retry comes a second later
                    status, body, metrics = await _readyz(http, url)
                    if status == 200:
                        break
                    await asyncio.sleep(0.1)
                assert (status, body) == (200, {"status": "ready"})
                assert 'algo_errors_dependency_up{part="slack"} 1.0' in metrics
        finally:
            process.terminate()
            _, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert "cannot reach Slack" in err.decode() or "Slack answered 503" in err.decode()


async def test_digest_once_without_slack_exits_1_naming_it(tmp_path: Path) -> None:
    async with SampleCluster(authorization=f"Simple {API_KEY}") as cluster, SlackStandIn() as slack:
        env = _env(cluster, slack, tmp_path) | {
            "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/"
        }
        code, _, err = await run_cli(tmp_path, env, "digest", "--once")
    assert code == 1
    assert "failed: SLACK_API_URL: cannot reach Slack" in err
