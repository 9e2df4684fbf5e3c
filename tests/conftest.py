"""Fixtures shared by all tests: the sample error records (shipped once, in `bot.testing`),
and a database location outside the repository for anything that opens the default store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest


def load_sample() -> dict[str, Any]:
    """The labelled sample records as stored (`age_ms` and all), from the packaged copy."""
    data: dict[str, Any] = json.loads(
        files("bot.testing").joinpath("sample_errors.json").read_text("utf-8")
    )
    return data


@pytest.fixture(scope="session")
def sample() -> dict[str, Any]:
    return load_sample()


@pytest.fixture(scope="session", autouse=True)
def _database_outside_the_repository(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """A process a test starts without `DATABASE_URL` would create `algo-errors.db` in the
    working directory, the repository: point the default elsewhere for the whole session."""
    patch = pytest.MonkeyPatch()
    database = Path(tmp_path_factory.mktemp("default-store")) / "algo-errors.db"
    patch.setenv("DATABASE_URL", f"sqlite:///{database}")
    yield
    patch.undo()


@pytest.fixture(scope="session")
def sample_record_by_bug(sample: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The newest record of each labelled bug."""
    by_bug: dict[str, dict[str, Any]] = {}
    for record in sample["records"]:
        by_bug.setdefault(sample["bugs"][record["request_id"]], record)
    return by_bug


_REPOSITORY = Path(__file__).parent.parent
_BEFORE: set[Path] = set()


def pytest_sessionstart(session: pytest.Session) -> None:
    _BEFORE.update(_REPOSITORY.glob("*.db*"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Tests never write into the repository: a database file left there fails the run."""
    left = sorted(set(_REPOSITORY.glob("*.db*")) - _BEFORE)
    if left:
        names = ", ".join(path.name for path in left)
        session.config.get_terminal_writer().line(f"tests wrote into the repository: {names}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
