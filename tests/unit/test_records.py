"""Error records at the boundary: strict where the bot needs a value, forgiving elsewhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.errors import records as records_module
from bot.errors.records import ErrorRecord, read_lazily, read_records, validate_records

TRACE = "error:\nboom\nstacktrace:\nNone"


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "created_at": 1627571664000,
        "request_id": "req-1",
        "username": "hello",
        "algoname": "echo",
        "algoversion": "0.1.0",
        "input": "A payload",
        "error": TRACE,
        "error_type": "AlgorithmError",
        "billable_to": "hello",
        "worker": "172.41.7.115",
    }
    return base | fields


def test_a_batch_keeps_records_with_oddly_typed_optional_fields() -> None:
    items = [
        record(request_id="req-number-version", algoversion=2, worker=17241),
        record(request_id="req-object-input", input={"image": "café.jpg", "size": [1, 2]}),
        record(request_id="req-array-input", input=["a", 1, None, True]),
        record(request_id="req-bool-billing", billable_to=False, username=3.5),
        record(request_id="req-numeric-type", error_type=42, algoname={"name": "echo"}),
        record(request_id="req-null-type", error_type=None),
        record(request_id="req-empty-type", error_type=""),
        record(request_id="req-no-error"),
    ]
    del items[-1]["error"]

    batch = validate_records(items)

    assert batch.skipped == 1
    by_id = {r.request_id: r for r in batch.records}
    assert list(by_id) == [item["request_id"] for item in items[:-1]]
    assert by_id["req-number-version"].algoversion == "2"
    assert by_id["req-number-version"].worker == "17241"
    assert by_id["req-object-input"].input == '{"image":"café.jpg","size":[1,2]}'
    assert by_id["req-array-input"].input == '["a",1,null,true]'
    assert by_id["req-bool-billing"].billable_to == "False"
    assert by_id["req-bool-billing"].username == "3.5"
    assert by_id["req-numeric-type"].error_type == "42"
    assert by_id["req-numeric-type"].algoname == '{"name":"echo"}'
    assert by_id["req-null-type"].error_type == "AlgorithmError"
    assert by_id["req-empty-type"].error_type == "AlgorithmError"


def test_missing_optional_fields_are_none_and_the_type_defaults() -> None:
    minimal = {"created_at": 1, "request_id": "req-1", "error": TRACE}

    parsed = ErrorRecord.model_validate(minimal)

    assert parsed.error_type == "AlgorithmError"
    assert parsed.username is None
    assert parsed.input is None
    assert parsed.worker is None


def test_unknown_fields_are_ignored() -> None:
    item = record(age_ms=6509750, region="eu-west-1", tags=["a"], nested={"x": 1})

    batch = validate_records([item])

    assert batch.skipped == 0
    (parsed,) = batch.records
    assert parsed.model_dump() == record()


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        (1627571664000, 1627571664000),
        (1627571664000.0, 1627571664000),
        ("1627571664000", 1627571664000),
        (" 1627571664000 ", 1627571664000),
        ("1627571664000.0", 1627571664000),
    ],
)
def test_created_at_is_a_whole_number_in_any_json_form(created_at: object, expected: int) -> None:
    (parsed,) = validate_records([record(created_at=created_at)]).records
    assert parsed.created_at == expected


@pytest.mark.parametrize("created_at", [2**63 - 1, -(2**63)])
def test_created_at_within_64_bits_is_kept_however_far_off(created_at: int) -> None:
    items = [record(created_at=created_at)]
    assert [r.created_at for r in validate_records(items).records] == [created_at]
    one_pass = read_records(json.dumps(items))
    assert one_pass is not None
    assert one_pass.records[0].created_at == created_at


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"created_at": None}, id="created_at-null"),
        pytest.param({"created_at": 1627571664000.5}, id="created_at-fraction"),
        pytest.param({"created_at": "yesterday"}, id="created_at-text"),
        pytest.param({"created_at": "1.5e12"}, id="created_at-exponent"),
        pytest.param({"created_at": True}, id="created_at-boolean"),
        pytest.param({"created_at": float("nan")}, id="created_at-nan"),
        pytest.param({"created_at": [1627571664000]}, id="created_at-array"),
        # No store column holds it: kept, it could never be marked reported.
        pytest.param({"created_at": 2**63}, id="created_at-beyond-64-bits"),
        pytest.param({"created_at": -(2**63) - 1}, id="created_at-below-64-bits"),
        pytest.param({"request_id": 12345}, id="request_id-number"),
        pytest.param({"request_id": None}, id="request_id-null"),
        pytest.param({"error": {"message": "boom"}}, id="error-object"),
        pytest.param({"error": None}, id="error-null"),
        pytest.param({"error": 500}, id="error-number"),
    ],
)
def test_a_record_with_a_bad_required_field_is_skipped_and_counted(
    broken: dict[str, Any],
) -> None:
    good = record(request_id="req-good")

    batch = validate_records([good, record(**broken), good])

    assert [r.request_id for r in batch.records] == ["req-good", "req-good"]
    assert batch.skipped == 1


@pytest.mark.parametrize("missing", ["created_at", "request_id", "error"])
def test_a_record_missing_a_required_field_is_skipped_and_counted(missing: str) -> None:
    incomplete = record()
    del incomplete[missing]

    batch = validate_records([record(request_id="req-good"), incomplete])

    assert [r.request_id for r in batch.records] == ["req-good"]
    assert batch.skipped == 1


@pytest.mark.parametrize("item", ["junk", 42, None, ["req-1"]])
def test_an_item_that_is_not_an_object_is_skipped_and_counted(item: object) -> None:
    batch = validate_records([item, record()])

    assert len(batch.records) == 1
    assert batch.skipped == 1


def test_a_well_formed_response_read_in_one_pass_is_what_the_long_way_reads(
    sample: dict[str, Any],
) -> None:
    items = [*sample["records"], record(error_type="  "), record(username=None)]
    content = json.dumps(items).encode()
    assert read_records(content) == validate_records(json.loads(content))


@pytest.mark.parametrize(
    "content",
    [
        json.dumps([record(algoversion=2)]),  # kept as text, the long way
        json.dumps([record(created_at=1.0e12)]),
        json.dumps([record(input={"image": "a.jpg"})]),
        json.dumps([record(), 3]),  # skipped and counted, the long way
        json.dumps([record(request_id=None)]),
        json.dumps({"error": {"message": "no"}}),
        json.dumps(record()),
        '[{"created_at": 1, "request_id": "r", "error": "\\ud800"}]',  # json.loads takes it
        "not json",
    ],
)
def test_anything_else_is_left_to_the_long_way(content: str) -> None:
    assert read_records(content.encode()) is None


@pytest.mark.parametrize(
    "items",
    [
        [record(), record(request_id="req-2")],
        [record(algoversion=2), record(request_id="req-2", created_at=1.0e12)],  # the long way
        [record(), record(request_id="req-no-error", error=None)],  # one skipped, counted
        [record(), 3, "x"],  # items that are not records: not lazily read at all
        [],
    ],
)
def test_a_lazily_read_response_has_the_records_the_long_way_reads(items: list[Any]) -> None:
    content = json.dumps(items).encode()
    eager = read_records(content) or validate_records(json.loads(content))
    lazy = read_lazily(content)
    if any(not isinstance(item, dict) for item in items):
        assert lazy is None  # the client then reads it the long way, as before
        return
    assert lazy is not None
    assert lazy.request_ids >= {r.request_id for r in eager.records}
    assert (lazy.records, lazy.skipped) == (eager.records, eager.skipped)
    assert lazy == eager
    assert lazy.request_ids == {r.request_id for r in eager.records}  # once read: valid ones


def test_a_lazily_read_response_decodes_its_records_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    content = json.dumps([record(), record(request_id="req-2")]).encode()
    decoded: list[object] = []
    monkeypatch.setattr(records_module, "read_records", lambda c: decoded.append(c) or None)
    batch = read_lazily(content)
    assert batch is not None
    assert batch.request_ids == {"req-1", "req-2"}
    assert "2 unread records" in repr(batch)
    assert decoded == []
    assert [r.request_id for r in batch.records] == ["req-1", "req-2"]  # the long way here
    assert decoded == [content]
    assert len(batch.records) == 2
    assert decoded == [content]  # once


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"error": {"message": "no"}}),
        json.dumps([record(request_id=None)]),
        json.dumps([{"created_at": 1}]),
        "[1, 2",
        "not json",
    ],
)
def test_what_is_not_an_array_of_records_with_ids_is_not_read_lazily(content: str) -> None:
    assert read_lazily(content.encode()) is None


def test_a_response_that_is_not_utf_8_is_not_read_lazily() -> None:
    # msgspec skips the parts it does not read without looking into them.
    content = json.dumps([record()]).encode().replace(b"boom", b"bo\xffm")
    assert read_lazily(content) is None  # the long way then refuses it, as before


def test_a_lazily_read_response_the_long_way_refuses_counts_every_record_malformed() -> None:
    huge = "9" * 5000  # more digits than json.loads reads; the ids' reading skips it
    items = ",".join([json.dumps(record(request_id="req-2")), json.dumps(record())])
    content = f'[{items[:-1]}, "size": {huge}}}]'.encode()
    with pytest.raises(ValueError, match="digits"):
        json.loads(content)
    batch = read_lazily(content)
    assert batch is not None
    assert batch.request_ids == {"req-1", "req-2"}
    assert (batch.records, batch.skipped) == ((), 2)


def _read_as_the_client_does(content: bytes) -> list[Any]:
    """Each way a response is read: at once (one pass, else the long way), and lazily."""
    at_once = read_records(content) or validate_records(json.loads(content))
    lazily = read_lazily(content) or at_once
    return [(at_once.records, at_once.skipped), (lazily.records, lazily.skipped)]


@pytest.mark.parametrize(
    "odd",
    [
        pytest.param(b"\\u0000", id="nul"),  # PostgreSQL's text refuses it
        pytest.param(b"\\ud800", id="escaped-lone-surrogate"),  # json.loads keeps it
        pytest.param(b"\xed\xa0\x80", id="surrogate-bytes"),  # json.loads decodes them so
    ],
)
def test_text_no_store_or_slack_takes_is_replaced_and_an_id_holding_it_is_malformed(
    odd: bytes,
) -> None:
    kept = json.dumps([record(error="boXom", algoversion="1.0-X")]).encode()
    dropped = json.dumps([record(request_id="req-X")]).encode()
    content = kept[:-1].replace(b"X", odd) + b", " + dropped[1:].replace(b"X", odd)

    for records, skipped in _read_as_the_client_does(content):
        assert [r.request_id for r in records] == ["req-1"]
        assert (records[0].error, records[0].algoversion) == ("bo\ufffdom", "1.0-\ufffd")
        assert skipped == 1
        for text in (records[0].error, records[0].algoversion):
            text.encode("utf-8")  # storable, and Slack takes it


def test_a_record_nested_deeper_than_json_loads_reads_is_not_read_lazily() -> None:
    content = json.dumps([record()]).encode()[:-2] + b', "input": ' + b"[" * 1100 + b"]" * 1100
    content += b"}]"
    assert read_lazily(content) is None  # the client then says why (a BadResponse)
