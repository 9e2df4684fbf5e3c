"""Prometheus metrics of one process, served at `GET /metrics`."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter


@dataclass
class Metrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    commands: Counter = field(init=False)
    lookups: Counter = field(init=False)

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
