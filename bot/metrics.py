"""Prometheus metrics of one process, served at `GET /metrics`."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass
class Metrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    commands: Counter = field(init=False)
    lookups: Counter = field(init=False)
    dependency_up: Gauge = field(init=False)

    def __post_init__(self) -> None:
        self.commands = Counter(
            "algo_errors_commands",
            "Slash commands received, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.lookups = Counter(
            "algo_errors_lookups",
            "Error lookups against the cluster, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "algo_errors_dependency_up",
            "Whether a dependency answers (1) or not (0), as /readyz last found it",
            ["part"],
            registry=self.registry,
        )
