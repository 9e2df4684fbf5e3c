"""Prometheus metrics of one process, served at `GET /metrics`: one registry per process (no
globals), each metric recorded where its event happens. The names and labels are the operating
contract (README, "Metrics"); more may be added, none renamed."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Outcome(StrEnum):
    """How a command or an interaction ended, as `algo_errors_{commands,interactions}_total`
    count it: done, declined (bad input, not allowed, a channel the bot cannot post in), or
    failed (the cluster, Slack, the database or a bug)."""

    OK = "ok"
    REFUSED = "refused"
    FAILED = "failed"


CLUSTER_OUTCOMES = ("ok", "not_found", "denied", "unavailable", "bad_response")
SLACK_OUTCOMES = ("ok", "ratelimited", "error")
DIGEST_OUTCOMES = ("ok", "cluster_failed", "slack_failed", "storage_failed", "error")
ALERT_KINDS = ("new", "recurrence", "regression", "notice")

_CLUSTER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_DIGEST_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    commands: Counter = field(init=False)
    interactions: Counter = field(init=False)
    cluster_requests: Counter = field(init=False)
    cluster_request_duration: Histogram = field(init=False)
    slack_calls: Counter = field(init=False)
    digest_runs: Counter = field(init=False)
    digest_run_duration: Histogram = field(init=False)
    alerts: Counter = field(init=False)
    subscriptions: Gauge = field(init=False)
    open_alerts: Gauge = field(init=False)
    last_digest_success: Gauge | None = field(init=False, default=None)
    """Only in processes that run digests (`runs_digests()`)."""
    dependency_up: Gauge = field(init=False)

    def __post_init__(self) -> None:
        registry = self.registry
        self.commands = Counter(
            "algo_errors_commands",
            "Slash commands answered, by command and outcome",
            ["command", "outcome"],
            registry=registry,
        )
        self.interactions = Counter(
            "algo_errors_interactions",
            "Button, select and Home tab interactions, by action and outcome",
            ["action", "outcome"],
            registry=registry,
        )
        self.cluster_requests = Counter(
            "algo_errors_cluster_requests",
            "Requests to the Algorithmia cluster (retries included in one), by outcome",
            ["outcome"],
            registry=registry,
        )
        self.cluster_request_duration = Histogram(
            "algo_errors_cluster_request_duration_seconds",
            "How long a request to the cluster took, retries included",
            buckets=_CLUSTER_BUCKETS,
            registry=registry,
        )
        self.slack_calls = Counter(
            "algo_errors_slack_calls",
            "Slack Web API calls (each attempt), by method and outcome",
            ["method", "outcome"],
            registry=registry,
        )
        self.digest_runs = Counter(
            "algo_errors_digest_runs",
            "Subscriptions' digest runs, by outcome (a run the database stopped counts once)",
            ["outcome"],
            registry=registry,
        )
        self.digest_run_duration = Histogram(
            "algo_errors_digest_run_duration_seconds",
            "How long one digest run (every due subscription) took",
            buckets=_DIGEST_BUCKETS,
            registry=registry,
        )
        self.alerts = Counter(
            "algo_errors_alerts",
            "Digest posts Slack confirmed, by kind",
            ["kind"],
            registry=registry,
        )
        self.subscriptions = Gauge(
            "algo_errors_subscriptions",
            "Subscriptions in the database (the same in every replica: aggregate with max())",
            registry=registry,
        )
        self.open_alerts = Gauge(
            "algo_errors_open_alerts",
            "Alerts open or regressed (the same in every replica: aggregate with max())",
            registry=registry,
        )
        self.dependency_up = Gauge(
            "algo_errors_dependency_up",
            "Whether a dependency answers (1) or not (0), checked at each scrape and /readyz",
            ["part"],
            registry=registry,
        )
        # Every outcome shows from the start (at 0), so a rate() has a series to read.
        for outcome in CLUSTER_OUTCOMES:
            self.cluster_requests.labels(outcome=outcome)
        for outcome in DIGEST_OUTCOMES:
            self.digest_runs.labels(outcome=outcome)
        for kind in ALERT_KINDS:
            self.alerts.labels(kind=kind)

    def cluster_request(self, outcome: str, seconds: float) -> None:
        self.cluster_requests.labels(outcome=outcome).inc()
        self.cluster_request_duration.observe(seconds)

    def slack_call(self, method: str, outcome: str) -> None:
        self.slack_calls.labels(method=method, outcome=outcome).inc()

    def runs_digests(self) -> Gauge:
        """This process runs digests: it gets the gauge of the last one that completed (0
        until then), which `serve --no-scheduler` replicas do not export."""
        if self.last_digest_success is None:
            self.last_digest_success = Gauge(
                "algo_errors_last_digest_success_timestamp_seconds",
                "When a digest run last completed (its subscriptions' own failures aside)",
                registry=self.registry,
            )
        return self.last_digest_success
