"""The deployment files: `.env.example` names exactly the settings the bot reads; the
Kustomize base lists every object, and each Deployment runs as a numeric non-root user on a
read-only root filesystem with probes; `compose.yaml` runs the bot on PostgreSQL 16 with
health checks. (`.ci/run` also validates the objects against Kubernetes' schemas and lints the
Dockerfile.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import SETTINGS_READ
from bot.config import Settings
from bot.digest.ticker import ABANDON_WAIT_S
from bot.wiring.run import AFTER_ACK_DRAIN_S, DIGEST_DRAIN_S, DRAIN_S, HTTP_DRAIN_S

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "manifests" / "kubernetes"


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_env_example_names_every_setting_and_nothing_else() -> None:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    named = re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE)
    assert len(named) == len(set(named))
    assert set(named) == {name.upper() for name in Settings.model_fields}
    # Each has a comment right above it (or shares one with the line above).
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Z_]+=", line):
            assert lines[index - 1].startswith("#") or re.match(r"^[A-Z_]+=", lines[index - 1])
            assert line.endswith("="), f"{line}: no value, secrets included"


def test_the_kustomization_lists_every_object_of_the_base_but_the_secret_example() -> None:
    """Applying the base must never replace an operator's Secret with the placeholders."""
    kustomization = _load(KUBERNETES / "kustomization.yaml")
    listed = set(kustomization["resources"])
    present = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present - {"secret.example.yaml"}
    assert _load(KUBERNETES / "secret.example.yaml")["metadata"]["name"] == "algo-errors"


def _deployments() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(KUBERNETES.glob("*.yaml"))
        if (document := _load(path)).get("kind") == "Deployment"
    ]


@pytest.mark.parametrize(
    ("name", "args", "replicas"),
    [
        ("algo-errors-serve", ["serve", "--no-scheduler", "--host", "0.0.0.0"], 2),
        ("algo-errors-digest", ["digest", "--host", "0.0.0.0"], 1),
    ],
)
def test_each_deployment_is_probed_and_locked_down(
    name: str, args: list[str], replicas: int
) -> None:
    (deployment,) = [d for d in _deployments() if d["metadata"]["name"] == name]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert (container["args"], spec["replicas"]) == (args, replicas)
    assert pod["terminationGracePeriodSeconds"] > DRAIN_S  # Kubernetes waits for the drain
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert isinstance(pod["securityContext"]["runAsUser"], int)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"mountPath": "/tmp", "name": "tmp"} in container["volumeMounts"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert set(container["resources"]) == {"requests", "limits"}
    sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources == {"algo-errors"}


def test_the_parts_of_the_shutdown_fit_in_the_drain_of_the_interface() -> None:
    assert DRAIN_S == 20  # the README's "Start-up and shutdown"
    assert HTTP_DRAIN_S < DRAIN_S  # requests in flight, while the digest run winds down
    assert DIGEST_DRAIN_S + ABANDON_WAIT_S < DRAIN_S  # a run cut short, then connections
    assert HTTP_DRAIN_S + AFTER_ACK_DRAIN_S + ABANDON_WAIT_S < DRAIN_S  # the work after acks


def test_the_dockerfile_runs_as_the_manifests_numeric_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    users = {d["spec"]["template"]["spec"]["securityContext"]["runAsUser"] for d in _deployments()}
    assert users == {10001}
    assert re.search(r"^USER 10001$", dockerfile, flags=re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*/healthz", dockerfile, flags=re.MULTILINE | re.DOTALL)
    assert re.search(r"^STOPSIGNAL SIGTERM$", dockerfile, flags=re.MULTILINE)


def test_compose_runs_the_bot_on_postgresql_16_with_health_checks() -> None:
    compose = _load(ROOT / "compose.yaml")
    bot, db = compose["services"]["bot"], compose["services"]["db"]
    assert db["image"] == "postgres:16"
    assert "healthcheck" in db
    assert "healthcheck" in bot
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["environment"]["DATABASE_URL"].startswith("postgresql://")
    assert bot["env_file"] == ".env"


def test_nothing_cites_documents_that_are_not_in_the_repository() -> None:
    files = [
        ROOT / "Dockerfile", ROOT / "README.md", ROOT / "ARCHITECTURE.md",
        *(p for p in sorted((ROOT / "bot").rglob("*.py"))),
        *(p for p in sorted((ROOT / "tests").rglob("*.py")) if p.name != "test_deployment.py"),
        *sorted((ROOT / "manifests").rglob("*.yaml")),
    ]  # fmt: skip
    for path in files:
        text = path.read_text(encoding="utf-8")
        for outside in ("INTERFACE", "shared/reference", "shared/spec", "DESIGN.md"):
            assert outside not in text, f"{path} cites {outside}"


def test_each_subcommand_s_settings_are_settings() -> None:
    known = {name.upper() for name in Settings.model_fields}
    for names in SETTINGS_READ.values():
        for entry in names:
            for name in re.findall(r"[A-Z][A-Z0-9_]{3,}", re.sub(r"\([^)]*\)", "", entry)):
                assert name in known, entry
