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


async def _black_hole() -> asyncio.Server:
    """A server that takes connections and never answers (a dead host behind a proxy)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()  # until the client gives up
        finally:
            writer.close()

    return await asyncio.start_server(hold, "127.0.0.1", 0)


async def test_a_slack_that_never_answers_holds_the_start_only_briefly(tmp_path: Path) -> None:
    """`/healthz` answers within the sign-in's first few seconds, not after the Slack client's
    whole 30 s timeout; `/readyz` says `slack` meanwhile."""
    hole = await _black_hole()
    async with SampleCluster(authorization=f"Simple {API_KEY}") as cluster, SlackStandIn() as slack:
        env = _env(cluster, slack, tmp_path) | {
            "SLACK_API_URL": f"http://127.0.0.1:{hole.sockets[0].getsockname()[1]}/api/"
        }
        port = free_port()
        started = asyncio.get_running_loop().time()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--no-scheduler", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                url = f"http://127.0.0.1:{port}"
                for _ in range(300):
                    try:
                        healthy = await http.get(f"{url}/healthz")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
                waited = asyncio.get_running_loop().time() - started
                assert healthy.status_code == 200
                assert waited < 15  # the sign-in's 5 s, and the start of a Python process
                ready = await http.get(f"{url}/readyz")
                assert (ready.status_code, ready.json()["reasons"]) == (503, ["slack"])
        finally:
            process.terminate()
            _, err = await process.communicate()
            hole.close()
            await asyncio.sleep(0.1)  # the held connections see the process gone, and close
        assert process.returncode == 0, err.decode()
        assert "no answer from Slack within 5 s" in err.decode()


async def test_a_token_slack_refuses_once_it_answers_ends_serve_with_exit_2(
    tmp_path: Path,
) -> None:
    """Slack down at start, then back refusing the token: a settings problem, as it is at
    start, so the process ends (exit 2, naming the variable) rather than serve unready."""
    async with SampleCluster(authorization=f"Simple {API_KEY}") as cluster, SlackStandIn() as slack:
        slack.fail_next("auth.test", status=503)
        slack.fail_next("auth.test", error="token_revoked")  # the first retry
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port),
            env=_env(cluster, slack, tmp_path), cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, err = await asyncio.wait_for(process.communicate(), timeout=30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 2, err.decode()
    assert "SLACK_BOT_TOKEN: Slack refused it (token_revoked)" in err.decode()
