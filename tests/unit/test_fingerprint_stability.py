"""Fingerprints never change, bit for bit: alert threads are stored under them.

`data/sample_fingerprints.json` holds, per sample record, the version-2 and version-1
fingerprints the bot gave before the fast reading of a response; `data/fixture_fingerprints
.json.gz` the same for every other error string the grouping and trace tests read. Whatever
way a record is read (the whole batch, one string, the full parse), it gets the same two."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from bot.errors.grouping import (
    clear_caches,
    fingerprint,
    legacy_fingerprint,
    read_occurrences,
)
from bot.errors.records import ErrorRecord, validate_records
from bot.errors.traces import parse_error

_DATA = Path(__file__).parent / "data"
_SAMPLE_FINGERPRINTS: dict[str, list[str]] = json.loads(
    (_DATA / "sample_fingerprints.json").read_text("utf-8")
)
_FIXTURES: list[dict[str, str]] = json.loads(
    gzip.decompress((_DATA / "fixture_fingerprints.json.gz").read_bytes())
)


def test_every_sample_record_keeps_both_fingerprints(sample: dict[str, Any]) -> None:
    clear_caches()
    occurrences = read_occurrences(validate_records(sample["records"]).records)
    assert len(occurrences) == len(_SAMPLE_FINGERPRINTS) == 80
    for occurrence in occurrences:
        record = occurrence.record
        pinned = _SAMPLE_FINGERPRINTS[record.request_id]
        assert [occurrence.fingerprint, occurrence.legacy_fingerprint] == pinned
        parsed = parse_error(record.error, record.error_type)
        assert fingerprint(parsed, record.error_type) == pinned[0]
        assert legacy_fingerprint(parsed, record.error_type) == pinned[1]


@pytest.mark.parametrize("case", _FIXTURES, ids=lambda c: c["fingerprint"])
def test_every_test_fixture_keeps_both_fingerprints(case: dict[str, str]) -> None:
    clear_caches()
    error, error_type = case["error"], case["error_type"]
    record = ErrorRecord(created_at=1, request_id="r", error=error, error_type=error_type or "X")
    parsed = parse_error(error, error_type)
    assert fingerprint(parsed, error_type) == case["fingerprint"]
    assert legacy_fingerprint(parsed, error_type) == case["legacy_fingerprint"]
    if record.error_type == error_type:  # as a record, when the record keeps this type
        (occurrence,) = read_occurrences([record])
        assert occurrence.fingerprint == case["fingerprint"]
        assert occurrence.legacy_fingerprint == case["legacy_fingerprint"]
