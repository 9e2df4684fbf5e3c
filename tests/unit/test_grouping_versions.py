"""Versioned fingerprints: version 1 stays bit for bit what stored alert threads are keyed by,
and each group names the version-1 fingerprints of its occurrences so that it can adopt them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.errors.grouping import (
    _MEMO_MAX_CHARS,
    FINGERPRINT_VERSION,
    fingerprint,
    group_records,
    legacy_fingerprint,
    read_occurrences,
)
from bot.errors.records import ErrorRecord, validate_records
from bot.errors.traces import parse_error
from tests.unit.test_grouping_raise_sites import SKLEARN_FEATURE_COUNT, SKLEARN_NAN

VERSION_1 = {
    "java-iioexception-cache-file-unreadable": "4dfb7cf8b45c",
    "java-iioexception-unsupported-image-type": "adc97f5bd186",
    "java-noclassdef-opencv-imgcodecs": "6300cfe5e11b",
    "java-oom-heap-decoding-jpeg": "852f82078e5e",
    "java-unsatisfiedlink-opencv": "db662b7dbde8",
    "node-axios-image-fetch-rejected": "5e92911af411",
    "node-jimp-read-not-a-function": "f0b726858f88",
    "node-timeout-string-rejection": "9746ed931b4f",
    "node-undefined-width-fitbox": "0babcec2d2b3",
    "py-cv2-cvtcolor-empty-image": "c0ca81e39d00",
    "py-hf-checkpoint-unreadable": "0d1689c5b149",
    "py-notify-channel-id-int": "9c447e94e017",
    "py-numpy-broadcast-alpha-channel": "4f66a185a3f7",
    "py-numpy-uint8-subtract-cast": "8d691e6193b7",
    "py-options-threshold-setter-recursion": "10db6c304889",
    "py-pil-antialias-removed": "ffb65747d4a1",
    "py-pil-decompression-bomb": "d00331b11d3a",
    "py-pil-rgba-jpeg-save": "e0d26fc5a8a9",
    "py-resnet-state-dict-size-mismatch": "70bccafbd4e9",
    "py-s3-image-not-found": "d92f5eae742b",
    "py-vitmatte-channel-mismatch": "a0f77280adfe",
    "rb-enoent-thumbnail-upload": "15905ed26fad",
    "rb-minimagick-invalid-png-header": "385bd436ea37",
    "rs-png-invalid-signature": "d5ebc6b03422",
    "rs-taxonomy-missing-labels-field": "61a497a27f29",
}
"""Computed by the version-1 code before version 2 existed, from each bug's newest record."""


def _record(request_id: str, error: str, created_at: int = 1_700_000_000_000) -> ErrorRecord:
    return ErrorRecord.model_validate(
        {"created_at": created_at, "request_id": request_id, "error": error,
         "error_type": "AlgorithmError", "algoversion": "1.0.0"}
    )  # fmt: skip


@pytest.mark.parametrize("bug", sorted(VERSION_1))
def test_version_1_fingerprints_are_what_they_were(
    sample_record_by_bug: dict[str, dict[str, Any]], bug: str
) -> None:
    record = sample_record_by_bug[bug]
    parsed = parse_error(record["error"], record["error_type"])
    assert legacy_fingerprint(parsed, record["error_type"]) == VERSION_1[bug]


def test_each_version_is_visible_in_the_fingerprint(
    sample_record_by_bug: dict[str, dict[str, Any]],
) -> None:
    record = sample_record_by_bug["py-notify-channel-id-int"]
    current = fingerprint(parse_error(record["error"], record["error_type"]), "AlgorithmError")
    assert FINGERPRINT_VERSION == 2
    assert re.fullmatch(r"2:[0-9a-f]{12}", current)
    assert re.fullmatch(
        r"[0-9a-f]{12}",
        legacy_fingerprint(parse_error(record["error"], record["error_type"]), "AlgorithmError"),
    )


def test_a_pair_version_1_merged_has_one_legacy_and_two_current_fingerprints() -> None:
    groups = group_records(
        [
            _record("req-a", SKLEARN_FEATURE_COUNT, 1_000),
            _record("req-b", SKLEARN_NAN, 2_000),
            _record("req-c", SKLEARN_NAN, 3_000),
        ]
    )
    assert [g.request_ids for g in groups] == [("req-c", "req-b"), ("req-a",)]
    assert len({g.fingerprint for g in groups}) == 2
    (legacy,) = {g.legacy_fingerprints for g in groups}
    assert len(legacy) == 1
    assert re.fullmatch(r"[0-9a-f]{12}", legacy[0])  # a version-1 key: bare hex


NODE_14_AXIOS = """error:
Error: Request failed with status code 404
stacktrace:
Some(Error: Request failed with status code 404
    at createError (/opt/algorithm/node_modules/axios/lib/core/createError.js:16:15)
    at settle (/opt/algorithm/node_modules/axios/lib/core/settle.js:17:12)
    at IncomingMessage.handleStreamEnd (/opt/algorithm/node_modules/axios/lib/adapters/http.js:260:11)
    at IncomingMessage.emit (events.js:327:22)
    at endReadableNT (internal/streams/readable.js:1327:12)
    at processTicksAndRejections (internal/process/task_queues.js:80:21))"""  # noqa: E501


def test_a_group_version_1_split_names_its_legacy_fingerprints_most_frequent_first(
    sample_record_by_bug: dict[str, dict[str, Any]],
) -> None:
    # Version 1 took Node 14's `events.js` for a library frame, Node 20's `node:events` not.
    node_20 = sample_record_by_bug["node-axios-image-fetch-rejected"]["error"]
    (group,) = group_records(
        [
            _record("req-a", node_20, 1_000),
            _record("req-b", NODE_14_AXIOS, 3_000),
            _record("req-c", node_20, 2_000),
        ]
    )
    assert group.count == 3
    (node_14,) = read_occurrences([_record("req-b", NODE_14_AXIOS)])
    assert group.legacy_fingerprints == (
        VERSION_1["node-axios-image-fetch-rejected"],
        node_14.legacy_fingerprint,
    )


def test_errors_too_long_for_the_memo_get_both_fingerprints(
    sample_record_by_bug: dict[str, dict[str, Any]],
) -> None:
    error = sample_record_by_bug["py-notify-channel-id-int"]["error"]
    long_error = error.replace("error:\n", "error:\n" + "x" * _MEMO_MAX_CHARS, 1)
    short, long = read_occurrences([_record("req-a", error), _record("req-b", long_error)])
    assert short.legacy_fingerprint == VERSION_1["py-notify-channel-id-int"]
    assert long.legacy_fingerprint == short.legacy_fingerprint
    assert long.fingerprint == short.fingerprint


def test_every_sample_record_keeps_its_version_1_group(sample: dict[str, Any]) -> None:
    occurrences = read_occurrences(validate_records(sample["records"]).records)
    for occurrence in occurrences:
        bug = sample["bugs"][occurrence.record.request_id]
        assert occurrence.legacy_fingerprint == VERSION_1[bug], occurrence.record.request_id
