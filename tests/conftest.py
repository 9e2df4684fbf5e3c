"""Fixtures shared by all tests: the sample error records (a copy of shared/fixtures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def sample() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "sample-errors.json").read_text())
    return data


@pytest.fixture(scope="session")
def sample_record_by_bug(sample: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The newest record of each labelled bug."""
    by_bug: dict[str, dict[str, Any]] = {}
    for record in sample["records"]:
        by_bug.setdefault(sample["bugs"][record["request_id"]], record)
    return by_bug
