"""The query use case: failures told apart, and a user always hears back in time."""

from __future__ import annotations

import asyncio

import pytest

from bot.algorithmia.client import AlgorithmInfo
from bot.algorithmia.exceptions import NotFound, Unavailable
from bot.domain.algorithm_ref import AlgorithmId, AlgorithmRef, OwnerName
from bot.errors.records import RecordBatch
from bot.usecases.query import fetch_errors
from bot.usecases.results import FailureKind, LookupFailure


class FakeCluster:
    def __init__(self, *, errors: Exception | None = None, lookup: Exception | None = None,
                 delay_s: float = 0.0) -> None:  # fmt: skip
        self.errors, self.lookup, self.delay_s = errors, lookup, delay_s

    async def list_errors(self, ref: AlgorithmRef) -> RecordBatch:
        await asyncio.sleep(self.delay_s)
        if self.errors is not None:
            raise self.errors
        return RecordBatch(())

    async def get_algorithm(self, ref: OwnerName) -> AlgorithmInfo:
        if self.lookup is not None:
            raise self.lookup
        return AlgorithmInfo(id="x", name=ref.name)


@pytest.mark.parametrize(
    ("cluster", "ref", "kind"),
    [
        (FakeCluster(errors=NotFound("not found"), lookup=NotFound("No such algorithm")),
         OwnerName("acme", "x"), FailureKind.ALGORITHM_NOT_FOUND),
        (FakeCluster(errors=NotFound("not found")), OwnerName("acme", "x"),
         FailureKind.ERROR_LOGS_DISABLED),
        (FakeCluster(errors=NotFound("not found")),
         AlgorithmId("3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8"), FailureKind.NOT_FOUND_BY_ID),
        (FakeCluster(errors=Unavailable("cluster answered 503")), OwnerName("acme", "x"),
         FailureKind.UNAVAILABLE),
    ],
)  # fmt: skip
async def test_failures_are_told_apart(
    cluster: FakeCluster, ref: AlgorithmRef, kind: FailureKind
) -> None:
    with pytest.raises(LookupFailure) as failure:
        await fetch_errors(cluster, ref)
    assert failure.value.kind is kind


async def test_a_lookup_that_hangs_ends_at_the_deadline() -> None:
    with pytest.raises(LookupFailure) as failure:
        await fetch_errors(FakeCluster(delay_s=5), OwnerName("acme", "x"), deadline_s=0.05)
    assert failure.value.kind is FailureKind.UNAVAILABLE
    assert failure.value.detail == "no answer within 0.05 s"
