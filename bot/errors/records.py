"""The error-log records of Algorithmia's API, validated at the boundary.

A record is one failed execution as `GET /v1/algorithms/…/errors` returns it. Unknown fields
are tolerated; one malformed record is skipped and counted, never fatal for the batch.

Only what the bot cannot do without is strict: `created_at` (an integer, also given as an
integral float or a numeric string), `request_id` and `error` (strings). An optional field of an
unexpected JSON type (a number, a boolean, an object, an array) is kept as text instead of
costing the whole record.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, Final

import msgspec
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

DEFAULT_ERROR_TYPE = "AlgorithmError"
"""What the runtimes report when an algorithm sets no type; also used when the API gives none."""

_INTEGER_TEXT = re.compile(r"[+-]?\d+(?:\.0*)?")


class ErrorRecord(BaseModel):
    """One failed execution of an algorithm."""

    # Numbers in text fields become text inside pydantic-core; the rarer odd types (objects,
    # booleans, null types) go through `_tolerant` (see `validate_records`).
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    created_at: int = Field(strict=True, ge=-(2**63), le=2**63 - 1)
    """Epoch milliseconds, as the API gives them; within a signed 64-bit integer, as every
    store keeps them (a record beyond is malformed: kept, it could never be marked reported)."""
    request_id: str = Field(strict=True)
    error: str = Field(strict=True)
    error_type: str = DEFAULT_ERROR_TYPE
    username: str | None = None
    algoname: str | None = None
    algoversion: str | None = None
    input: str | None = None
    billable_to: str | None = None
    worker: str | None = None

    @field_validator("error_type")
    @classmethod
    def _typed(cls, value: str) -> str:
        """An empty or blank type is the default type."""
        return value if value.strip() else DEFAULT_ERROR_TYPE


_RECORDS = TypeAdapter(list[ErrorRecord])


def utc_minute(epoch_ms: int) -> str:
    """`YYYY-MM-DD HH:MM UTC`: a record's time as every surface writes it. Any time a record
    can carry is written, never refused: a cluster's clock years off, or milliseconds that
    were microseconds, come out past 9999 (`datetime` cannot represent them, and would fail
    the whole answer)."""
    try:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch_ms // 1000))
    except (OverflowError, OSError, ValueError):  # beyond the platform's `time_t`
        return f"{epoch_ms:,} ms after 1970-01-01 UTC"


_OPTIONAL_TEXT = ("username", "algoname", "algoversion", "input", "billable_to", "worker")


def _tolerant(item: object) -> object:
    """A record whose fields are of unexpected JSON types, brought to the expected ones where
    that loses nothing; what cannot be (no `error`, a fractional time) stays invalid."""
    if not isinstance(item, dict):
        return item
    fixed = dict(item)
    for name in _OPTIONAL_TEXT:
        if name in fixed:
            fixed[name] = _as_text(fixed[name])
    error_type = _as_text(fixed.get("error_type"))
    fixed["error_type"] = (
        error_type if isinstance(error_type, str) and error_type.strip() else DEFAULT_ERROR_TYPE
    )
    fixed["created_at"] = _whole_number(fixed.get("created_at"))
    return fixed


def _whole_number(value: object) -> object:
    """Epoch ms given as an integral float or a numeric string; anything else unchanged (and
    refused by the strict field), booleans included."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        return int(value.strip().partition(".")[0])
    return value


def _as_text(value: object) -> object:
    """A JSON scalar or structure as text; `None` and strings as they are (others: unchanged,
    for the field's own validation to refuse)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, dict | list):
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        except RecursionError:  # read by `loads_deep`, deeper than Python writes back
            return _TOO_DEEP
    return value


_TOO_DEEP = "(a JSON value nested too deeply to show)"
DEEPEST_JSON: Final = 10_000
"""Levels of nesting `loads_deep` reads (Python's own limit is about 1,000, which a caller's
input can pass); deeper is refused. Well within the C stack the decoder recurses on."""


def loads_deep(content: bytes | str) -> Any:
    """`json.loads`, also of a document nested past Python's recursion limit (up to
    `DEEPEST_JSON` levels): one record with a deep input must not make a whole response
    unreadable (every query and digest of its algorithm failing for the API's 7 days).
    Raises what `json.loads` raises, and `RecursionError` past `DEEPEST_JSON`."""
    try:
        return json.loads(content)
    except RecursionError:
        limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, DEEPEST_JSON + 100))
    try:
        return json.loads(content)
    finally:
        sys.setrecursionlimit(limit)


class RecordBatch:
    """The valid records of one response and how many malformed ones were skipped.

    A batch made by `read_lazily` holds the response's bytes and its request ids only: its
    records are decoded when first asked for, so a digest run with nothing new decodes none."""

    __slots__ = ("_content", "_records", "_request_ids", "_skipped")

    def __init__(self, records: Iterable[ErrorRecord] = (), skipped: int = 0) -> None:
        self._records: tuple[ErrorRecord, ...] | None = tuple(records)
        self._skipped = skipped
        self._content: bytes | str | None = None
        self._request_ids: frozenset[str] | None = None

    @classmethod
    def _unread(cls, content: bytes | str, request_ids: frozenset[str]) -> RecordBatch:
        batch = cls()
        batch._records, batch._content, batch._request_ids = None, content, request_ids
        return batch

    @property
    def records(self) -> tuple[ErrorRecord, ...]:
        if self._records is None:
            self._decode()
        assert self._records is not None
        return self._records

    @property
    def skipped(self) -> int:
        if self._records is None:
            self._decode()
        return self._skipped

    @property
    def request_ids(self) -> frozenset[str]:
        """The request ids of the records; of an unread batch, without decoding them (an id
        of a record that turns out malformed may be among them)."""
        if self._request_ids is None:
            self._request_ids = frozenset(r.request_id for r in self.records)
        return self._request_ids

    def _decode(self) -> None:
        assert self._content is not None
        try:
            read = read_records(self._content) or validate_records(loads_deep(self._content))
        except (ValueError, RecursionError):
            # Parts the ids' reading skipped that `json.loads` refuses (a number of thousands
            # of digits): no record can be kept, and each is counted as malformed.
            read = RecordBatch((), len(self._request_ids or ()))
        self._records, self._skipped, self._content = read.records, read.skipped, None
        self._request_ids = None  # now those of the valid records only

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordBatch):
            return NotImplemented
        return (self.records, self.skipped) == (other.records, other.skipped)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self._records is None:
            return f"RecordBatch(<{len(self.request_ids)} unread records>)"
        return f"RecordBatch(records={self._records!r}, skipped={self._skipped})"


class _RequestId(msgspec.Struct):
    request_id: str


_REQUEST_IDS = msgspec.json.Decoder(list[_RequestId])


def read_lazily(content: bytes | str) -> RecordBatch | None:
    """A response's request ids now, its records when first asked for: a JSON array of objects
    each with a text `request_id` (other fields are not looked at yet; a malformed record is
    left out when the records are decoded). None for anything else, read as `read_records`'s
    caller reads it (text that is not UTF-8 included: msgspec does not look into the parts
    it skips)."""
    if isinstance(content, bytes) and not content.isascii():
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        keys = _REQUEST_IDS.decode(content)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None  # RecursionError: past msgspec's depth; the long way reads deeper
    return RecordBatch._unread(content, frozenset(key.request_id for key in keys))


def read_records(content: bytes | str) -> RecordBatch | None:
    """Decode and validate a well-formed response in one pass into pydantic-core: a JSON array
    of records whose every field has the expected JSON type (strict: no number as text, no
    float as time). None for anything else, which is read the long way (`json.loads`, then
    `validate_records`) to tell what is wrong or keep what can be kept, as before."""
    try:
        records = _RECORDS.validate_json(content, strict=True)
    except ValidationError:
        return None
    # JSON writes NUL only as `\\u0000`: the rare response with one is made storable.
    if (b"\\u0000" in content) if isinstance(content, bytes) else ("\\u0000" in content):
        kept = _storable(records)
        return RecordBatch(kept, len(records) - len(kept))
    return RecordBatch(tuple(records))


def validate_records(items: list[Any]) -> RecordBatch:
    """Validate the items of a response array; skip (and count) the ones that do not fit.

    Well-formed responses are validated in one call into pydantic-core; only when that fails
    is each item tried alone, and then in its tolerant form."""
    try:
        records = _RECORDS.validate_python(items)
    except ValidationError:
        records = []
        for item in items:
            try:
                records.append(ErrorRecord.model_validate(item))
            except ValidationError:
                try:
                    records.append(ErrorRecord.model_validate(_tolerant(item)))
                except ValidationError:
                    continue
    kept = _storable(records)
    return RecordBatch(kept, len(items) - len(kept))


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""NUL, which PostgreSQL's text refuses, and lone surrogates (`json.loads` keeps `\\ud800`),
which are no UTF-8: neither can be stored, fingerprinted or sent to Slack."""
_TEXT_FIELDS = ("request_id", "error", "error_type", *_OPTIONAL_TEXT)


def _storable(records: Iterable[ErrorRecord]) -> tuple[ErrorRecord, ...]:
    """The records with U+FFFD in place of what no store or Slack takes (`_UNSTORABLE`); one
    whose request id holds any is left out (malformed): its id could not be kept as sent, and
    one made up could meet another record's."""
    kept = []
    for record in records:
        fixed = {}
        for name in _TEXT_FIELDS:
            value = getattr(record, name)
            if value is not None and _UNSTORABLE.search(value) is not None:
                fixed[name] = _UNSTORABLE.sub("\ufffd", value)
        if "request_id" in fixed:
            continue
        kept.append(record.model_copy(update=fixed) if fixed else record)
    return tuple(kept)
