"""Serve the sample cluster and the Slack stand-in in their own process (for benchmarks).

Prints one JSON line with their URLs, then serves until stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys

from bot.testing.sample_cluster import SampleCluster
from bot.testing.slack_stand_in import SlackStandIn

API_KEY = "simBENCHKEY00000000000000000"


async def main() -> None:
    async with SampleCluster(authorization=f"Simple {API_KEY}") as cluster, SlackStandIn() as slack:
        cluster.load_sample()
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
        print(json.dumps({"messages": len(slack.messages), "calls": len(slack.calls)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
