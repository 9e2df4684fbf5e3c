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
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

DEFAULT_ERROR_TYPE = "AlgorithmError"
"""What the runtimes report when an algorithm sets no type; also used when the API gives none."""

_INTEGER_TEXT = re.compile(r"[+-]?\d+(?:\.0*)?")


class ErrorRecord(BaseModel):
    """One failed execution of an algorithm."""

    # Numbers in text fields become text inside pydantic-core; the rarer odd types (objects,
    # booleans, null types) go through `_tolerant` (see `validate_records`).
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    created_at: int = Field(strict=True)
    """Epoch milliseconds, as the API gives them."""
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
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """The valid records of one response and how many malformed ones were skipped."""

    records: tuple[ErrorRecord, ...]
    skipped: int = 0


def read_records(content: bytes | str) -> RecordBatch | None:
    """Decode and validate a well-formed response in one pass into pydantic-core: a JSON array
    of records whose every field has the expected JSON type (strict: no number as text, no
    float as time). None for anything else, which is read the long way (`json.loads`, then
    `validate_records`) to tell what is wrong or keep what can be kept, as before."""
    try:
        return RecordBatch(tuple(_RECORDS.validate_json(content, strict=True)))
    except ValidationError:
        return None


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
    return RecordBatch(tuple(records), len(items) - len(records))
