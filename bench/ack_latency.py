"""Ack latency of `/algo-errors` under 50 concurrent signed commands. Target: p99 < 100 ms.

The real `algo-errors-bot serve` runs in its own process; the sample cluster and the Slack
stand-in run in a second one; this process signs and sends the commands. One warm-up command
first (Bolt calls `auth.test` once, lazily). Every command is a full query of the sample
algorithm (80 errors, 25 groups), so each ack is followed by a fetch and 21 posts that compete
with the later acks for the bot's event loop.

    .venv/bin/python bench/ack_latency.py
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from standins import CHANNELS  # the script's own folder is on sys.path

from bot.testing.loopback import free_port
from bot.testing.signing import sign, slash_command_body

CONCURRENT = 50
TARGET_P99_MS = 100.0
SECRET = "bench-signing-secret"
ROOT = Path(__file__).resolve().parent.parent


async def send(http: aiohttp.ClientSession, url: str, body: str, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    async with http.post(url, data=body, headers=headers) as response:
        answer = await response.json()
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status == 200, answer
    assert "Looking up" in answer["text"]
    return elapsed


async def run(url: str, response_url: str) -> list[float]:
    body = slash_command_body("acme/image_tagger", response_url=response_url)
    # Each command in a channel of its own: the bot paces posts per channel, as Slack does.
    bodies = [
        slash_command_body("acme/image_tagger", response_url=response_url, channel_id=channel)
        for channel in CHANNELS[:CONCURRENT]
    ]
    # aiohttp: a lighter client than httpx, so the load generator distorts less.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        for _ in range(100):
            try:
                async with http.get(url.replace("/slack/events", "/healthz")) as health:
                    if health.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        await send(http, url, body, sign(SECRET, body))  # warm-up: Bolt calls auth.test once
        await asyncio.sleep(2)
        signed = [(b, sign(SECRET, b)) for b in bodies]
        return list(await asyncio.gather(*(send(http, url, b, h) for b, h in signed)))


def main() -> None:
    standins = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "standins.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert standins.stdout is not None
    assert standins.stdin is not None
    urls = json.loads(standins.stdout.readline())
    port = free_port()
    env = os.environ | {
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": urls["slack"],
        "ALGORITHMIA_API_URL": urls["cluster"],
        "ALGORITHMIA_API_KEY": urls["api_key"],
        "LOG_LEVEL": "WARNING",
        # Not the default `algo-errors.db` in the working directory: the repository.
        "DATABASE_URL": f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}",
    }
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        latencies = sorted(
            asyncio.run(run(f"http://127.0.0.1:{port}/slack/events", urls["response_url"]))
        )
        time.sleep(25)  # let the bot finish posting (3 at once, then 1/s per channel)
    finally:
        bot.terminate()
        bot.wait(10)
        standins.stdin.close()
        counts = json.loads(standins.stdout.readline())
        standins.wait(10)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{CONCURRENT} concurrent signed /algo-errors commands (after one warm-up)")
    print(f"ack latency: p50 {p50:.1f} ms · p99 {p99:.1f} ms · max {latencies[-1]:.1f} ms")
    expected = (CONCURRENT + 1) * 21
    print(f"messages posted by the bot meanwhile: {counts['messages']} (expected {expected})")
    verdict = "meets" if p99 < TARGET_P99_MS else "MISSES"
    print(f"target p99 < {TARGET_P99_MS:.0f} ms: {verdict} ({p99 / TARGET_P99_MS:.2f} of target)")


if __name__ == "__main__":
    main()
