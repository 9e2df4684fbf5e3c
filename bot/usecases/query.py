"""The query use case: fetch an algorithm's recent errors, apply the options, group them."""

from __future__ import annotations

import asyncio
from typing import Protocol

from bot.algorithmia.client import AlgorithmInfo
from bot.algorithmia.exceptions import (
    AlgorithmiaError,
    BadResponse,
    FeatureDisabled,
    Forbidden,
    NotFound,
    Unauthorized,
    Unavailable,
)
from bot.domain.algorithm_ref import AlgorithmId, AlgorithmRef, OwnerName
from bot.domain.commands import Query
from bot.errors.grouping import RecordFilter, group_occurrences, read_occurrences
from bot.errors.records import RecordBatch
from bot.usecases.results import FailureKind, LookupFailure, QueryResult
from bot.usecases.turns import CpuTurns


class ErrorSource(Protocol):
    async def list_errors(self, ref: AlgorithmRef) -> RecordBatch: ...

    async def get_algorithm(self, ref: OwnerName) -> AlgorithmInfo: ...


LOOKUP_DEADLINE_S = 45.0
"""However the retries go, a user hears back within this time."""


async def fetch_errors(
    source: ErrorSource, ref: AlgorithmRef, deadline_s: float = LOOKUP_DEADLINE_S
) -> RecordBatch:
    """The records of `ref`, or a `LookupFailure` saying why not (404s told apart)."""
    try:
        async with asyncio.timeout(deadline_s):
            return await source.list_errors(ref)
    except TimeoutError as error:
        detail = f"no answer within {deadline_s:g} s"
        raise LookupFailure(FailureKind.UNAVAILABLE, str(ref), detail) from error
    except NotFound as error:
        raise await _explain_not_found(source, ref, error) from error
    except AlgorithmiaError as error:
        raise _failure(ref, error) from error


async def _explain_not_found(
    source: ErrorSource, ref: AlgorithmRef, error: NotFound
) -> LookupFailure:
    if isinstance(ref, AlgorithmId):
        return LookupFailure(FailureKind.NOT_FOUND_BY_ID, str(ref), error.message)
    try:
        await source.get_algorithm(ref)
    except NotFound as lookup_error:
        return LookupFailure(FailureKind.ALGORITHM_NOT_FOUND, str(ref), lookup_error.message)
    except AlgorithmiaError as lookup_error:
        return _failure(ref, lookup_error)
    return LookupFailure(FailureKind.ERROR_LOGS_DISABLED, str(ref), error.message)


def _failure(ref: AlgorithmRef, error: AlgorithmiaError) -> LookupFailure:
    kinds: list[tuple[type[AlgorithmiaError], FailureKind]] = [
        (Unauthorized, FailureKind.UNAUTHORIZED),
        (Forbidden, FailureKind.FORBIDDEN),
        (FeatureDisabled, FailureKind.ERROR_LOGS_DISABLED),
        (Unavailable, FailureKind.UNAVAILABLE),
        (BadResponse, FailureKind.BAD_RESPONSE),
        (NotFound, FailureKind.ALGORITHM_NOT_FOUND),
    ]
    for error_class, kind in kinds:
        if isinstance(error, error_class):
            return LookupFailure(kind, str(ref), error.message)
    return LookupFailure(FailureKind.REJECTED, str(ref), error.message)


def summarize(query: Query, batch: RecordBatch, now_ms: int) -> QueryResult:
    """Apply the query's options to a batch and group what is left (pure)."""
    since_ms = now_ms - query.since_seconds * 1000 if query.since_seconds is not None else None
    wanted = RecordFilter(since_ms, query.version, query.error_type)
    occurrences = [o for o in read_occurrences(batch.records) if wanted.matches(o)]
    return QueryResult(
        target=str(query.target),
        groups=tuple(group_occurrences(occurrences)),
        errors=len(occurrences),
        options=query.options_text(),
        beyond_window=query.beyond_window,
        skipped=batch.skipped,
    )


async def run_query(
    source: ErrorSource, query: Query, now_ms: int, turns: CpuTurns | None = None
) -> QueryResult:
    """Fetch, filter and group; raises `LookupFailure` when the errors cannot be read.
    Reading the records waits for a turn (`turns`, the process's; without, one of its own)."""
    batch = await fetch_errors(source, query.target)
    await (turns or CpuTurns()).take()
    return summarize(query, batch, now_ms)
