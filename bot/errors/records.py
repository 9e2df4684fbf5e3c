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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_ERROR_TYPE = "AlgorithmError"
"""What the runtimes report when an algorithm sets no type; also used when the API gives none."""

_INTEGER_TEXT = re.compile(r"[+-]?\d+(?:\.0*)?")


class ErrorRecord(BaseModel):
    """One failed execution of an algorithm."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    created_at: int
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

    @field_validator("created_at", mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("created_at must be a number, not a boolean")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
            return int(value.strip().partition(".")[0])
        raise ValueError("created_at must be a whole number of epoch milliseconds")

    @field_validator(
        "username", "algoname", "algoversion", "input", "billable_to", "worker", mode="before"
    )
    @classmethod
    def _optional_text(cls, value: object) -> object:
        return _as_text(value)

    @field_validator("error_type", mode="before")
    @classmethod
    def _error_type(cls, value: object) -> object:
        text = _as_text(value)
        if text is None or (isinstance(text, str) and not text.strip()):
            return DEFAULT_ERROR_TYPE
        return text


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


def validate_records(items: list[Any]) -> RecordBatch:
    """Validate each item of a response array; skip (and count) the ones that do not fit."""
    records: list[ErrorRecord] = []
    skipped = 0
    for item in items:
        try:
            records.append(ErrorRecord.model_validate(item))
        except ValidationError:
            skipped += 1
    return RecordBatch(tuple(records), skipped)
