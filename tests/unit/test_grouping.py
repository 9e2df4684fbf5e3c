"""One bug is one group: the labelled sample records, and variations that must (not) split."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors.grouping import (
    RecordFilter,
    fingerprint,
    group_records,
    mask_variable_parts,
    read_occurrences,
)
from bot.errors.records import ErrorRecord, validate_records
from bot.errors.traces import parse_error


def _fp(error: str, error_type: str = "AlgorithmError") -> str:
    return fingerprint(parse_error(error, error_type), error_type)


def test_each_labelled_bug_is_exactly_one_group(sample: dict[str, Any]) -> None:
    groups = group_records(validate_records(sample["records"]).records)
    bugs_of_group = {g.fingerprint: {sample["bugs"][r] for r in g.request_ids} for g in groups}
    groups_of_bug: dict[str, set[str]] = defaultdict(set)
    for fp, bugs in bugs_of_group.items():
        assert len(bugs) == 1, f"group {fp} merges {sorted(bugs)}"
        groups_of_bug[next(iter(bugs))].add(fp)
    assert {bug: len(fps) for bug, fps in groups_of_bug.items() if len(fps) > 1} == {}
    assert len(groups) == len(set(sample["bugs"].values())) == 25


def test_groups_are_newest_first_with_counts_and_versions(sample: dict[str, Any]) -> None:
    groups = group_records(validate_records(sample["records"]).records)
    last_seen = [g.last_seen for g in groups]
    assert last_seen == sorted(last_seen, reverse=True)
    assert sum(g.count for g in groups) == 80
    antialias = next(g for g in groups if "ANTIALIAS" in g.headline)
    assert antialias.count == 5
    assert antialias.versions == ("2.0.0",)
    cv2 = next(g for g in groups if g.headline.startswith("cv2.error"))
    assert cv2.versions == ("1.4.0", "1.4.1", "2.0.1")
    assert cv2.first_seen <= cv2.last_seen


def _shift_line_numbers(error: str, by: int) -> str:
    error = re.sub(r"line (\d+)", lambda m: f"line {int(m.group(1)) + by}", error)
    error = re.sub(r"\.java:(\d+)\)", lambda m: f".java:{int(m.group(1)) + by})", error)
    return re.sub(r"\.(js|rb):(\d+)", lambda m: f".{m.group(1)}:{int(m.group(2)) + by}", error)


@pytest.mark.parametrize(
    "bug",
    [
        "py-notify-channel-id-int",
        "py-hf-checkpoint-unreadable",
        "java-unsatisfiedlink-opencv",
        "node-undefined-width-fitbox",
        "rb-enoent-thumbnail-upload",
    ],
)
def test_redeploy_that_moves_lines_keeps_the_group(
    sample_record_by_bug: dict[str, dict[str, Any]], bug: str
) -> None:
    error = sample_record_by_bug[bug]["error"]
    assert _fp(_shift_line_numbers(error, 7)) == _fp(error)


def test_recursion_depth_does_not_split(sample_record_by_bug: dict[str, dict[str, Any]]) -> None:
    error = sample_record_by_bug["py-options-threshold-setter-recursion"]["error"]
    frame = '  File "./src/options.py", line 31, in threshold\n    self.threshold = value\n'
    deeper = error.replace(frame, frame * 3, 1)
    assert deeper != error
    assert _fp(deeper) == _fp(error)


def test_another_exception_at_the_same_place_is_another_group(
    sample_record_by_bug: dict[str, dict[str, Any]],
) -> None:
    error = sample_record_by_bug["py-notify-channel-id-int"]["error"]
    other = error.replace("\nValueError: invalid literal", "\nTypeError: invalid literal")
    assert _fp(other) != _fp(error)


def test_the_same_exception_from_another_function_is_another_group(
    sample_record_by_bug: dict[str, dict[str, Any]],
) -> None:
    error = sample_record_by_bug["py-notify-channel-id-int"]["error"]
    other = error.replace("in send_summary", "in send_report")
    assert _fp(other) != _fp(error)


def test_message_wording_does_not_split_a_traced_bug(
    sample_record_by_bug: dict[str, dict[str, Any]],
) -> None:
    error = sample_record_by_bug["py-notify-channel-id-int"]["error"]
    other = error.replace("'<!here> cc <@U12345>'", "'general'")
    assert other != error
    assert _fp(other) == _fp(error)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("column 17", "column 4211"),
        ("id 3f2a9c1e-0b7d-4e8a-9c3f-1d2e3f4a5b6c", "id 00000000-1111-2222-3333-444444444444"),
        ("at 0x7f3a2c", "at 0xdeadbeef"),
        ("object 5f1c9e0a7b3d", "object 9a8b7c6d5e4f"),
    ],
)
def test_without_a_trace_variable_parts_of_the_message_are_masked(first: str, second: str) -> None:
    template = "error:\nfailed {}\ncaused by: parse error\nstacktrace:\nNone"
    assert _fp(template.format(first)) == _fp(template.format(second))


def test_without_a_trace_different_words_or_types_are_different_groups() -> None:
    assert _fp("error:\ntimeout\nstacktrace:\nNone") != _fp("error:\nrefused\nstacktrace:\nNone")
    assert _fp("error:\nboom\nstacktrace:\nNone", "SystemError") != _fp(
        "error:\nboom\nstacktrace:\nNone", "AlgorithmError"
    )


def _library_only(module: str) -> str:
    return (
        "error:\nx\nstacktrace:\nSome(Traceback (most recent call last):\n"
        '  File "/usr/local/bin/algorithmia-pipe", line 40, in get_response\n'
        '  File "/usr/local/lib/python3.12/importlib/__init__.py", line 90, in import_module\n'
        f"ModuleNotFoundError: No module named '{module}')"
    )


def test_library_only_traces_with_different_messages_are_different_groups() -> None:
    assert _fp(_library_only("torch")) != _fp(_library_only("cv2"))
    assert _fp(_library_only("torch")) == _fp(_library_only("torch"))


def test_java_9_module_prefixes_keep_the_group(
    sample_record_by_bug: dict[str, dict[str, Any]],
) -> None:
    error = sample_record_by_bug["java-iioexception-unsupported-image-type"]["error"]
    modern = re.sub(r"\tat (java|javax|sun)\.", r"\tat java.base/\1.", error)
    modern = modern.replace("\tat algorithmia.", "\tat app//algorithmia.")
    assert modern != error
    assert _fp(modern) == _fp(error)


def test_mask_keeps_words() -> None:
    assert mask_variable_parts("missing field `labels` at line 1 column 88") == (
        "missing field `labels` at line <n> column <n>"
    )


def _record(**fields: Any) -> ErrorRecord:
    base: dict[str, Any] = {
        "created_at": 1_700_000_000_000,
        "request_id": "req-1",
        "error": "error:\nboom\nstacktrace:\nNone",
        "error_type": "AlgorithmError",
        "algoversion": "1.0.0",
    }
    return ErrorRecord.model_validate(base | fields)


def test_duplicate_request_ids_count_once() -> None:
    groups = group_records([_record(), _record(), _record(request_id="req-2")])
    assert [g.count for g in groups] == [2]


def test_filters_apply_to_counts(sample_record_by_bug: dict[str, dict[str, Any]]) -> None:
    traced = sample_record_by_bug["py-notify-channel-id-int"]["error"]
    records = [
        _record(request_id="a", created_at=1_000, error=traced),
        _record(request_id="b", created_at=5_000, algoversion="2.0.0", error=traced),
        _record(request_id="c", created_at=6_000, error_type="InputError"),
    ]
    occurrences = read_occurrences(records)

    def kept(f: RecordFilter) -> list[str]:
        return [o.record.request_id for o in occurrences if f.matches(o)]

    assert kept(RecordFilter(since_ms=5_000)) == ["b", "c"]
    assert kept(RecordFilter(version="2.0.0")) == ["b"]
    assert kept(RecordFilter(error_type="valueerror")) == ["a", "b"]
    assert kept(RecordFilter(error_type="inputerror")) == ["c"]
    assert kept(RecordFilter(error_type="KeyError")) == []


def test_java_short_class_name_matches_type_filter(
    sample_record_by_bug: dict[str, dict[str, Any]],
) -> None:
    record = _record(error=sample_record_by_bug["java-oom-heap-decoding-jpeg"]["error"])
    (occurrence,) = read_occurrences([record])
    assert RecordFilter(error_type="OutOfMemoryError").matches(occurrence)
    assert RecordFilter(error_type="java.lang.OutOfMemoryError").matches(occurrence)


@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=3, max_size=3))
def test_fingerprint_ignores_line_numbers(lines: list[int]) -> None:
    def trace(numbers: list[int]) -> str:
        return (
            "error:\nx\nstacktrace:\nSome(Traceback (most recent call last):\n"
            f'  File "/usr/local/bin/algorithmia-pipe", line {numbers[0]}, in get_response\n'
            f'  File "./src/a.py", line {numbers[1]}, in apply\n'
            f'  File "./src/b.py", line {numbers[2]}, in helper\n'
            "KeyError: 'x')"
        )

    assert _fp(trace(lines)) == _fp(trace([1, 2, 3]))


def test_a_version_of_digits_int_refuses_is_sorted_as_text() -> None:
    # `str.isdigit` is true of superscripts, which `int` refuses: such a version once raised.
    records = [_record(request_id="a", algoversion="1.²"), _record(request_id="b")]
    (group,) = group_records(records)
    assert group.versions == ("1.²", "1.0.0")
