"""The error-log records of Algorithmia's API, validated at the boundary.

A record is one failed execution as `GET /v1/algorithms/…/errors` returns it. Unknown fields
are tolerated; one malformed record is skipped and counted, never fatal for the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class ErrorRecord(BaseModel):
    """One failed execution of an algorithm."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    created_at: int
    """Epoch milliseconds, as the API gives them."""
    request_id: str
    error: str
    error_type: str = "AlgorithmError"
    username: str | None = None
    algoname: str | None = None
    algoversion: str | None = None
    input: str | None = None
    billable_to: str | None = None
    worker: str | None = None


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
