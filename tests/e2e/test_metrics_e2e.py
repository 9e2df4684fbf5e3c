"""`/metrics` after a scripted session: every metric of the operating contract is there, with
its labels, and moved by what happened (commands, clicks, the Home tab, cluster and Slack
calls, 429s, digest runs and their alerts, the gauges read from the database)."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from bot.testing.harness import RunningBot, running_bot
from bot.testing.sample_cluster import fresh_record

CONTRACT = {
    "algo_errors_commands_total": {"command", "outcome"},
    "algo_errors_interactions_total": {"action", "outcome"},
    "algo_errors_cluster_requests_total": {"outcome"},
    "algo_errors_cluster_request_duration_seconds_count": set(),
    "algo_errors_slack_calls_total": {"method", "outcome"},
    "algo_errors_digest_runs_total": {"outcome"},
    "algo_errors_digest_run_duration_seconds_count": set(),
    "algo_errors_alerts_total": {"kind"},
    "algo_errors_subscriptions": set(),
    "algo_errors_open_alerts": set(),
    "algo_errors_last_digest_success_timestamp_seconds": set(),
    "algo_errors_dependency_up": {"part"},
}


class Scrape:
    def __init__(self, text: str) -> None:
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples that have these labels (0 when there is none)."""
        return sum(
            value
            for sample, have, value in self.samples
            if sample == name and all(have.get(k) == v for k, v in labels.items())
        )

    def label_names(self, name: str) -> set[str]:
        return {key for sample, have, _ in self.samples if sample == name for key in have}


async def _scrape(bot: RunningBot) -> Scrape:
    await bot.http.get(f"{bot.url}/readyz")  # the dependency gauges follow /readyz
    response = await bot.http.get(f"{bot.url}/metrics")
    assert response.status_code == 200
    return Scrape(response.text)


async def _ephemeral(bot: RunningBot, text: str, count: int) -> None:
    assert (await bot.command(text)).status_code == 200
    await bot.slack.wait_for(lambda s: len(s.ephemerals) >= count, timeout=10)


async def test_every_metric_is_served_and_moves_with_what_happened() -> None:
    async with running_bot() as bot:
        before = await _scrape(bot)
        assert before.value("algo_errors_commands_total") == 0

        assert (await bot.command("help")).status_code == 200
        assert (await bot.command("acme/x since:soon")).status_code == 200  # usage shown
        await bot.command("acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.top_level("C_GENERAL")) == 1)
        await bot.slack.wait_idle(quiet_s=0.2)
        await _ephemeral(bot, "acme/no_such_algorithm", 1)
        bot.cluster.fail_next(503, times=3)  # every try of the next lookup
        await _ephemeral(bot, "acme/image_tagger", 2)
        await _ephemeral(bot, "unsubscribe acme/never_subscribed", 3)
        await bot.command("subscribe acme/image_tagger")
        await bot.slack.wait_for(lambda s: len(s.top_level("C_GENERAL")) == 2)
        await _ephemeral(bot, "list", 4)

        now_ms = int(time.time() * 1000)
        bot.cluster.append_records(
            "acme", "image_tagger", [fresh_record("py-notify-channel-id-int", now_ms)]
        )
        bot.slack.fail_next("chat.postMessage", status=429, retry_after=1)
        report = await bot.digest()
        assert report.posted >= 1
        assert not report.failed
        await bot.slack.wait_idle(quiet_s=0.2)
        (alert,) = [m for m in bot.slack.top_level("C_GENERAL") if "actions" in str(m.blocks)]
        bot.cluster.append_records(
            "acme", "image_tagger", [fresh_record("py-notify-channel-id-int", now_ms + 1)]
        )
        await bot.digest()  # a recurrence, in the alert's thread
        bot.cluster.fail_next(503, times=3)
        await bot.digest()  # the cluster does not answer this one
        assert (await bot.click(alert, "group_take")).status_code == 200
        await bot.slack.wait_for(lambda s: "U_ALICE" in str(alert.blocks))
        assert (await bot.open_home()).status_code == 200
        await bot.slack.wait_for(lambda s: "U_ALICE" in s.home_views)
        await bot.slack.wait_idle(quiet_s=0.2)

        after = await _scrape(bot)
        answered = list(bot.slack.calls)

    for name, labels in CONTRACT.items():
        assert after.label_names(name) == labels, name
    commands = "algo_errors_commands_total"
    assert after.value(commands, command="help", outcome="ok") == 1
    assert after.value(commands, command="usage", outcome="refused") == 1
    assert after.value(commands, command="query", outcome="ok") == 1
    assert after.value(commands, command="query", outcome="refused") == 1  # no such algorithm
    assert after.value(commands, command="query", outcome="failed") == 1  # the cluster is down
    assert after.value(commands, command="unsubscribe", outcome="refused") == 1
    assert after.value(commands, command="subscribe", outcome="ok") == 1
    assert after.value(commands, command="list", outcome="ok") == 1
    interactions = "algo_errors_interactions_total"
    assert after.value(interactions, action="group_take", outcome="ok") == 1
    assert after.value(interactions, action="home", outcome="ok") == 1

    cluster = "algo_errors_cluster_requests_total"
    assert after.value(cluster, outcome="not_found") >= 1
    assert after.value(cluster, outcome="unavailable") == 2  # the query and one digest run
    assert after.value(cluster, outcome="ok") >= 4  # a query, a subscribe, two digests
    assert after.value("algo_errors_cluster_request_duration_seconds_count") == after.value(cluster)
    slack = "algo_errors_slack_calls_total"
    # The 429 asked for, and any the stand-in's own per-channel limit gave (Slack's pace, met
    # on a loaded machine): the metric counts each answer Slack gave.
    limited = [c for c in answered if c.method == "chat.postMessage" and c.status == 429]
    assert len(limited) >= 1
    assert after.value(slack, method="chat.postMessage", outcome="ratelimited") == len(limited)
    assert after.value(slack, method="chat.postMessage", outcome="ok") >= 4
    assert after.value(slack, method="views.publish", outcome="ok") >= 1
    assert after.value(slack, method="chat.update", outcome="ok") >= 1

    runs = "algo_errors_digest_runs_total"
    assert after.value(runs, outcome="ok") == 2
    assert after.value(runs, outcome="cluster_failed") == 1
    assert after.value("algo_errors_digest_run_duration_seconds_count") == 3
    assert after.value("algo_errors_alerts_total", kind="new") == 1
    assert after.value("algo_errors_alerts_total", kind="recurrence") == 1
    assert after.value("algo_errors_alerts_total", kind="regression") == 0
    last = after.value("algo_errors_last_digest_success_timestamp_seconds")
    assert time.time() - 60 < last <= time.time()

    assert after.value("algo_errors_subscriptions") == 1
    assert after.value("algo_errors_open_alerts") == 1
    assert after.value("algo_errors_dependency_up", part="database") == 1
