"""A digest run of 1,000 subscriptions over 500 algorithms, 50 ms added to every cluster request.

Targets: wall time within 1.5x of the lower bound ceil(500 / C) x 50 ms for the bot's fetch
concurrency C; exactly 500 cluster requests (each algorithm fetched once); peak memory shown.
The sample cluster runs in its own process (`standins.py`); the run is the bot's own
`run_digests` with the real Algorithmia client and the SQLite store. Every subscription has
already seen the records (as after `subscribe`), so the run measures fetching, reading and the
store, not Slack's pacing.

    .venv/bin/python bench/digest_run.py            # wall time, requests, max RSS
    .venv/bin/python bench/digest_run.py --memory   # peak allocations (tracemalloc: slower)
    .venv/bin/python bench/digest_run.py --profile  # where the time goes
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import math
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.algorithmia.client import AlgorithmiaClient
from bot.config import CLUSTER_CONCURRENCY as DIGEST_CONCURRENCY
from bot.store.repository import Store
from bot.usecases.digest import run_digests
from bot.wiring.build import cluster_http

ALGORITHMS = 500
SUBSCRIPTIONS = 1000
LATENCY_S = 0.05
ROOT = Path(__file__).resolve().parent.parent
TRACE_MEMORY = "--memory" in sys.argv
"""tracemalloc slows Python down several times: peak allocations are measured in a run of
their own, the wall time in a run without it."""


class SilentNotifier:
    """Nothing is new, so nothing may be said."""

    async def new_alert(self, *args: Any) -> str:
        raise AssertionError("nothing is new")

    first_reply = thread_news = outage = recovered = mute_over = new_alert


async def setup(store: Store, records: list[dict[str, Any]], now: datetime) -> None:
    seen = [(r["request_id"], r["created_at"]) for r in records]
    for number in range(SUBSCRIPTIONS):
        algorithm = f"acme/algo_{number % ALGORITHMS}"
        subscription = await store.upsert_subscription(
            f"C{number}", algorithm, "every:15m", "UTC", "U1", now, now
        )
        await store.mark_reported(subscription.id, seen, now)


async def run(urls: dict[str, str], database: Path) -> tuple[float, int, Any]:
    from bot.testing.sample_cluster import sample_records

    now = datetime.now(UTC)
    async with await Store.open(f"sqlite:///{database}") as store, cluster_http() as http:
        await setup(store, sample_records(int(now.timestamp() * 1000)), now)
        client = AlgorithmiaClient(http, urls["cluster"], f"Simple {urls['api_key']}")
        if TRACE_MEMORY:
            tracemalloc.start()
        start, cpu_start = time.perf_counter(), time.process_time()
        profile = cProfile.Profile() if "--profile" in sys.argv else None
        if profile:
            profile.enable()
        report = await run_digests(
            store, client, SilentNotifier(), now=now, worker="bench",
            concurrency=DIGEST_CONCURRENCY,
        )  # fmt: skip
        if profile:
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        wall = time.perf_counter() - start
        print(f"(the bot's own CPU time during the run: {time.process_time() - cpu_start:.2f} s)")
        _, peak = tracemalloc.get_traced_memory() if TRACE_MEMORY else (0, 0)
        tracemalloc.stop()
    return wall, peak, report


def main() -> None:
    standins = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "standins.py"), str(ALGORITHMS), str(LATENCY_S)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert standins.stdout is not None
    assert standins.stdin is not None
    urls = json.loads(standins.stdout.readline())
    with tempfile.TemporaryDirectory() as folder:
        wall, peak, report = asyncio.run(run(urls, Path(folder) / "bench.db"))
    standins.stdin.close()
    counts = json.loads(standins.stdout.readline())
    standins.wait(10)
    bound = math.ceil(ALGORITHMS / DIGEST_CONCURRENCY) * LATENCY_S
    print(
        f"{SUBSCRIPTIONS} subscriptions over {ALGORITHMS} algorithms, "
        f"{LATENCY_S * 1000:.0f} ms per cluster request, concurrency C = {DIGEST_CONCURRENCY}"
    )
    print(f"ran {len(report.ran)}, failed {len(report.failed)}, posted {report.posted}")
    print(
        f"wall time {wall:.2f} s against the bound ceil({ALGORITHMS}/{DIGEST_CONCURRENCY}) x "
        f"{LATENCY_S * 1000:.0f} ms = {bound:.2f} s: {wall / bound:.2f}x (target <= 1.5x)"
    )
    print(f"cluster requests: {counts['cluster_requests']} (target exactly {ALGORITHMS})")
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    traced = (
        f"{peak / 2**20:.1f} MiB allocated by Python during the run"
        if TRACE_MEMORY
        else "run with --memory for the allocations during the run"
    )
    print(f"peak memory: process max RSS {maxrss_mib:.0f} MiB; {traced}")


if __name__ == "__main__":
    main()
