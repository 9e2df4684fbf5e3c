"""Ack latency of `/algo-errors` under 50 concurrent signed commands, beside `/healthz` under the
same load. Targets: ack p99 ≤ 1.5 × the `/healthz` p99, and < 100 ms (≤ 50 ms where the floor
allows).

The real `algo-errors-bot serve` runs in its own process; the sample cluster and the Slack
stand-in run in a second one; this process signs and sends the requests. One warm-up command
first (Bolt calls `auth.test` once, lazily). Then `ROUNDS` rounds, each 50 concurrent commands
with 50 concurrent `/healthz` requests sent among them, one after each command: the probes meet
the very load the commands make, and the work the earlier commands left after their ack (every
command is a full query of the sample algorithm, 80 errors, 25 groups: a fetch and 21 posts,
paced per channel as Slack limits them). `/healthz` does nothing, so its p99 is what any
request waits for in the process under that load: the floor.

With `--apart`, each round's 50 probes go first, in a burst of their own, then the 50 commands
(the measure of the earlier sessions: the probes then meet only the earlier commands' work).

    .venv/bin/python bench/ack_latency.py            # 1,000 commands
    .venv/bin/python bench/ack_latency.py --apart    # the probes before each round's commands
    .venv/bin/python bench/ack_latency.py --profile  # the bot under cProfile: where time goes
"""

from __future__ import annotations

import asyncio
import json
import os
import pstats
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
ROUNDS = 20
TARGET_RATIO = 1.5
TARGET_P99_MS = 100.0
SECRET = "bench-signing-secret"
ROOT = Path(__file__).resolve().parent.parent
PROFILE = "--profile" in sys.argv
APART = "--apart" in sys.argv


async def timed(http: aiohttp.ClientSession, method: str, url: str, **kwargs: object) -> float:
    start = time.perf_counter()
    async with http.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
        answer = await response.json()
    elapsed = (time.perf_counter() - start) * 1000
    assert response.status == 200, answer
    return elapsed


async def run(base: str, response_url: str) -> tuple[list[float], list[float]]:
    events, health = f"{base}/slack/events", f"{base}/healthz"
    # Each command in a channel of its own: the bot paces posts per channel, as Slack does.
    bodies = [
        slash_command_body("acme/image_tagger", response_url=response_url, channel_id=channel)
        for channel in CHANNELS[:CONCURRENT]
    ]
    # aiohttp: a lighter client than httpx, so the load generator distorts less.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        for _ in range(100):
            try:
                async with http.get(health) as probe:
                    if probe.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        warm = bodies[0]
        await timed(http, "POST", events, data=warm, headers=sign(SECRET, warm))
        await asyncio.sleep(2)
        acks: list[float] = []
        probes: list[float] = []
        for _ in range(ROUNDS):
            if APART:
                probes += await asyncio.gather(
                    *(timed(http, "GET", health) for _ in range(CONCURRENT))
                )
            signed = [(b, sign(SECRET, b)) for b in bodies]  # fresh timestamps each round
            sent = []
            for body, headers in signed:
                sent.append(timed(http, "POST", events, data=body, headers=headers))
                if not APART:
                    sent.append(timed(http, "GET", health))
            answered = await asyncio.gather(*sent)
            acks += answered if APART else answered[0::2]
            probes += [] if APART else answered[1::2]
        return acks, probes


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    standins = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "standins.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert standins.stdout is not None
    assert standins.stdin is not None
    urls = json.loads(standins.stdout.readline())
    port = free_port()
    folder = Path(tempfile.mkdtemp())
    env = os.environ | {
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": urls["slack"],
        "ALGORITHMIA_API_URL": urls["cluster"],
        "ALGORITHMIA_API_KEY": urls["api_key"],
        "LOG_LEVEL": "INFO",  # as deployed: a line per command
        # Not the default `algo-errors.db` in the working directory: the repository.
        "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
    }
    profile = folder / "serve.prof"
    runner = ["-m", "cProfile", "-o", str(profile)] if PROFILE else []
    bot = subprocess.Popen(
        [sys.executable, *runner, "-m", "bot", "serve", "--host", "127.0.0.1", "--port",
         str(port)],
        env=env, cwd=ROOT, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        acks, probes = asyncio.run(run(f"http://127.0.0.1:{port}", urls["response_url"]))
    finally:
        bot.terminate()
        bot.wait(60)
        standins.stdin.close()
        counts = json.loads(standins.stdout.readline())
        standins.wait(10)
    ack_p99, health_p99 = p99(acks), p99(probes)
    ratio = ack_p99 / health_p99
    print(f"{len(acks)} signed /algo-errors commands, {CONCURRENT} at a time ({ROUNDS} rounds)")
    if APART:
        print(f"/healthz: {CONCURRENT} at a time before each round's commands (--apart)")
    else:
        print(f"/healthz: {CONCURRENT} sent among each round's commands (the same load)")
    print(f"ack:      p50 {statistics.median(acks):6.1f} ms · p99 {ack_p99:6.1f} ms")
    print(f"/healthz: p50 {statistics.median(probes):6.1f} ms · p99 {health_p99:6.1f} ms")
    print(f"messages posted by the bot meanwhile: {counts['messages']} (the rest still paced)")
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(f"ack p99 / healthz p99 = {ratio:.2f} (target <= {TARGET_RATIO}): {verdict}")
    verdict = "meets" if ack_p99 < TARGET_P99_MS else "MISSES"
    print(f"ack p99 < {TARGET_P99_MS:.0f} ms: {verdict} ({ack_p99 / TARGET_P99_MS:.2f} of target)")
    if PROFILE:
        pstats.Stats(str(profile)).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
