"""A digest run with nothing new, 50 ms added to every cluster request: fan-out and scale.

Two sizes: 1,000 subscriptions over 500 algorithms (default) and, with `--large`, 10,000 over
5,000 (a few channels each). Every subscription has already seen the records (as after
`subscribe`), so the run measures fetching, reading and the store, not Slack's pacing. The
sample cluster runs in its own process (`standins.py`), the database is filled by another one,
so this process's peak RSS is the run's own; the run is the bot's `run_digests` with the real
Algorithmia client and the SQLite store.

Each figure is printed beside its bound, measured in the same run:

- cluster requests: exactly one per algorithm;
- the fetch bound ceil(A / C) x 50 ms for the fetch concurrency C; the run's time after its
  fixed start-up (the claim, until the first request leaves) within 1.2x of it, and the
  effective concurrency A x 50 ms / that time (at most C; target >= 40 at the bot's C);
- the same A requests by the bare HTTP client (the bot's, C at a time, nothing done with the
  answers), after the run in the same process: what the HTTP stack alone reaches here, so the
  run's own cost is the ratio to it, and the CPU each took (the stand-in cluster's CPU, on the
  other core, is shown too);
- database statements of the run (they grow with batches and posts, not with subscriptions),
  and of a scheduler tick with none due (target: one);
- peak RSS (target < 150 MB at 10,000 subscriptions).

    .venv/bin/python bench/digest_run.py [--large] [--concurrency C]
    .venv/bin/python bench/digest_run.py --memory   # peak allocations (tracemalloc: slower)
    .venv/bin/python bench/digest_run.py --profile  # where the time goes
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import math
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

from bot.algorithmia.client import AlgorithmiaClient
from bot.config import CLUSTER_CONCURRENCY
from bot.domain.algorithm_ref import AlgorithmRef, OwnerName
from bot.errors.records import RecordBatch
from bot.store.engine import share_the_gil_with_sqlite
from bot.store.repository import Store
from bot.store.schema import reported_records, subscriptions
from bot.usecases.digest import run_digests
from bot.wiring.build import cluster_http

LATENCY_S = 0.05
CHANNEL_SUBSCRIPTIONS = 20
"""Subscriptions per channel: 50 channels at 1,000 subscriptions, 500 at 10,000."""
ROOT = Path(__file__).resolve().parent.parent


class SilentNotifier:
    """Nothing is new, so nothing may be said."""

    async def new_alert(self, *args: Any) -> str:
        raise AssertionError("nothing is new")

    first_reply = thread_news = outage = recovered = mute_over = refresh = new_alert
    find_post = find_notice = new_alert


class MeasuredSource:
    """The cluster client, timing its requests: when the first left, when the last came
    back, and how many were in flight at most."""

    def __init__(self, client: AlgorithmiaClient) -> None:
        self._client = client
        self.first: float | None = None
        self.last = 0.0
        self.in_flight = self.max_in_flight = 0

    async def list_errors(self, ref: AlgorithmRef) -> RecordBatch:
        if self.first is None:
            self.first = time.perf_counter()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._client.list_errors(ref)
        finally:
            self.in_flight -= 1
            self.last = time.perf_counter()

    async def get_algorithm(self, ref: OwnerName) -> Any:
        return await self._client.get_algorithm(ref)


async def fill(database: Path, algorithms: int, count: int) -> None:
    """The subscriptions, each having seen the sample's records (in bulk: not measured)."""
    from bot.testing.sample_cluster import sample_records

    now = datetime.now(UTC) - timedelta(minutes=1)
    seen = sample_records(int(now.timestamp() * 1000))
    async with await Store.open(f"sqlite:///{database}") as store:
        rows = [
            {
                "channel_id": f"C{number // CHANNEL_SUBSCRIPTIONS}",
                "algorithm": f"acme/algo_{number % algorithms}",
                "schedule": "every:15m",
                "timezone": "UTC",
                "created_by": "U1",
                "created_at": now,
                "next_run_at": now,
                "paused_reason": None,
                "consecutive_failures": 0,
                "outage_notified": False,
                "notify": [],
                "min_count": 1,
            }
            for number in range(count)
        ]
        async with store.database.transaction() as connection:
            await connection.execute(subscriptions.insert(), rows)
        for first in range(1, count + 1, 500):
            reported = [
                {
                    "subscription_id": sid,
                    "request_id": r["request_id"],
                    "created_at_ms": r["created_at"],
                    "reported_at": now,
                }
                for sid in range(first, min(first + 500, count + 1))
                for r in seen
            ]
            async with store.database.transaction() as connection:
                await connection.execute(reported_records.insert(), reported)


def cpu_of(pid: int) -> float:
    """A process's CPU seconds so far (Linux; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(
    urls: dict[str, str],
    database: Path,
    options: argparse.Namespace,
    standins: int,
    algorithms: int,
) -> dict[str, Any]:
    statements = 0

    def counted(*_: Any) -> None:
        nonlocal statements
        statements += 1

    now = datetime.now(UTC)
    async with (
        await Store.open(f"sqlite:///{database}") as store,
        cluster_http(options.concurrency) as http,
    ):
        share_the_gil_with_sqlite(store.database)  # as the bot's processes do
        event.listen(store.database.engine.sync_engine, "before_cursor_execute", counted)
        source = MeasuredSource(
            AlgorithmiaClient(http, urls["cluster"], f"Simple {urls['api_key']}")
        )
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        gc.collect()  # as the bot's processes do once started (`wiring.run._start_up_frozen`):
        gc.freeze()  # the run's full collections leave what start-up built alone
        if options.memory:
            tracemalloc.start()
        statements = 0
        profile = cProfile.Profile() if options.profile else None
        start, cpu_start = time.perf_counter(), time.process_time()
        standins_start = cpu_of(standins)
        if profile:
            profile.enable()
        report = await run_digests(
            store, source, SilentNotifier(), now=now, worker="bench",
            concurrency=options.concurrency,
        )  # fmt: skip
        if profile:
            profile.disable()
        end, cpu = time.perf_counter(), time.process_time() - cpu_start
        standins_cpu = cpu_of(standins) - standins_start
        run_statements, statements = statements, 0
        _, peak = tracemalloc.get_traced_memory() if options.memory else (0, 0)
        tracemalloc.stop()
        idle = await run_digests(
            store, source, SilentNotifier(), now=now + timedelta(seconds=1), worker="bench",
            concurrency=options.concurrency,
        )  # fmt: skip
        bare, bare_cpu = await bare_fetches(http, urls, algorithms, options.concurrency)
        if profile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
            pstats.Stats(profile).sort_stats("cumulative").print_stats("bot/", 40)
    assert source.first is not None
    return {
        "report": report, "idle": idle, "wall": end - start, "cpu": cpu,
        "standins_cpu": standins_cpu, "bare": bare, "bare_cpu": bare_cpu,
        "startup": source.first - start, "tail": end - source.last,
        "max_in_flight": source.max_in_flight, "statements": run_statements,
        "idle_statements": statements, "peak": peak, "rss_before": rss_before,
    }  # fmt: skip


async def bare_fetches(
    http: httpx.AsyncClient, urls: dict[str, str], algorithms: int, concurrency: int
) -> tuple[float, float]:
    """The same requests by the bare HTTP client (the bot's, `concurrency` at a time), their
    answers read and nothing else done: what the HTTP stack alone takes on this machine."""
    turns = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Simple {urls['api_key']}"}

    async def fetch(number: int) -> None:
        async with turns:
            url = f"{urls['cluster']}/v1/algorithms/acme/algo_{number}/errors"
            (await http.get(url, headers=headers)).raise_for_status()

    start, cpu_start = time.perf_counter(), time.process_time()
    await asyncio.gather(*(fetch(number) for number in range(algorithms)))
    return time.perf_counter() - start, time.process_time() - cpu_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="10,000 over 5,000 algorithms")
    parser.add_argument("--concurrency", type=int, default=CLUSTER_CONCURRENCY)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--fill", nargs=3, help=argparse.SUPPRESS)  # database algorithms count
    options = parser.parse_args()
    if options.fill:
        database, algorithms, count = options.fill
        asyncio.run(fill(Path(database), int(algorithms), int(count)))
        return
    algorithms, count = (5000, 10000) if options.large else (500, 1000)
    standins = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "standins.py"), str(algorithms), str(LATENCY_S)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert standins.stdout is not None
    assert standins.stdin is not None
    urls = json.loads(standins.stdout.readline())
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "bench.db"
        subprocess.run(
            [sys.executable, __file__, "--fill", str(database), str(algorithms), str(count)],
            check=True,
        )
        figures = asyncio.run(run(urls, database, options, standins.pid, algorithms))
    standins.stdin.close()
    counts = json.loads(standins.stdout.readline())
    standins.wait(10)
    show(figures, counts, algorithms, count, options.concurrency)


def show(
    figures: dict[str, Any], counts: dict[str, int], algorithms: int, count: int, c: int
) -> None:
    report, idle = figures["report"], figures["idle"]
    wall, startup = figures["wall"], figures["startup"]
    bound = math.ceil(algorithms / c) * LATENCY_S
    fetching = wall - startup
    effective = algorithms * LATENCY_S / fetching
    print(
        f"{count} subscriptions over {algorithms} algorithms, {LATENCY_S * 1000:.0f} ms per "
        f"cluster request, concurrency C = {c}"
    )
    print(f"ran {len(report.ran)}, failed {len(report.failed)}, posted {report.posted}")
    print(
        f"cluster requests: {counts['cluster_requests'] - algorithms} (target exactly "
        f"{algorithms}); "
        f"at most {figures['max_in_flight']} in flight (bound C = {c})"
    )
    print(
        f"wall {wall:.2f} s = start-up {startup:.2f} s (claim and reads until the first "
        f"request) + {fetching:.2f} s, of which {figures['tail']:.2f} s after the last answer; "
        f"the bot's CPU {figures['cpu']:.2f} s, the stand-in cluster's (the other core) "
        f"{figures['standins_cpu']:.2f} s"
    )
    print(
        f"after start-up {fetching:.2f} s against the fetch bound ceil({algorithms}/{c}) x "
        f"{LATENCY_S * 1000:.0f} ms = {bound:.2f} s: {fetching / bound:.2f}x (target <= 1.2x); "
        f"whole run {wall / bound:.2f}x"
    )
    print(
        f"effective concurrency {algorithms} x {LATENCY_S * 1000:.0f} ms / {fetching:.2f} s = "
        f"{effective:.1f} (at most C = {c}; target >= 40)"
    )
    bare = figures["bare"]
    print(
        f"the same {algorithms} requests by the bare HTTP client, {c} at a time, nothing done "
        f"with the answers: {bare:.2f} s = {bare / bound:.2f}x the bound, effective concurrency "
        f"{algorithms * LATENCY_S / bare:.1f}, its CPU {figures['bare_cpu']:.2f} s; the run after "
        f"start-up takes {fetching / bare:.2f}x that"
    )
    print(
        f"database statements: {figures['statements']} in the run "
        f"({figures['statements'] / count:.3f} per subscription); "
        f"a tick with none due ({len(idle.ran)} ran): {figures['idle_statements']} (target 1)"
    )
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    traced = (
        f"{figures['peak'] / 2**20:.1f} MiB allocated by Python during the run"
        if figures["peak"]
        else "run with --memory for the allocations during the run"
    )
    print(
        f"peak memory: max RSS {maxrss_mib:.0f} MiB (target < 150 MB = 143 MiB; "
        f"{figures['rss_before'] / 1024:.0f} MiB before the run); {traced}"
    )


if __name__ == "__main__":
    main()
