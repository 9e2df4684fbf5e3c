"""Serve the sample cluster and the Slack stand-in in their own process (for benchmarks).

Prints one JSON line with their URLs, then serves until stdin closes, then prints one JSON
line of counts. Arguments: how many extra algorithms `acme/algo_N` (each with the sample's
records) and the latency added to every cluster request, in seconds.
"""

from __future__ import annotations

import asyncio
import json
import sys

from bot.testing.sample_cluster import SampleCluster, sample_records
from bot.testing.slack_stand_in import SlackStandIn

API_KEY = "simBENCHKEY00000000000000000"
CHANNELS = tuple(f"C_BENCH_{number}" for number in range(64))
"""The bot is a member of these: each concurrent command of `ack_latency` has its own, since
the bot paces its posts per channel as Slack limits them."""


async def main() -> None:
    algorithms = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    latency_s = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    async with (
        SampleCluster(authorization=f"Simple {API_KEY}") as cluster,
        SlackStandIn(member_of=("C_GENERAL", *CHANNELS), public=("C_GENERAL", *CHANNELS)) as slack,
    ):
        cluster.load_sample()
        records = sample_records(cluster.now_ms())
        for number in range(algorithms):  # more algorithms, each with the sample's records
            cluster.add_algorithm("acme", f"algo_{number}", records=records)
        cluster.latency_s = latency_s
        cluster.reuse_bodies = True  # the cluster's cost is not the bot's
        cluster.encode_bodies()  # nor its first answers' (the run is timed before the bare client)
        print(
            json.dumps(
                {
                    "cluster": cluster.base_url,
                    "slack": slack.base_url,
                    "response_url": slack.response_url(),
                    "api_key": API_KEY,
                }
            ),
            flush=True,
        )
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        summary = {
            "messages": len(slack.messages),
            "calls": len(slack.calls),
            "cluster_requests": len(cluster.requests),
        }
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
