"""`ProbedStore`: the store plus the reads and single-row lease calls only tests make.

The bot itself claims and finishes in bulk (`claim_due`, `finish_runs`); these go through the
very statements those use, one subscription at a time, so the lease rules can be tested alone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.domain.alerts import AlertThread, DigestRun, FinishedRun, RunOutcome, Subscription
from bot.store.repository import Store
from bot.store.schema import digest_runs, reported_records, subscriptions
from bot.store.subscriptions import (
    SUBSCRIPTION_COLUMNS,
    ending,
    ending_parameters,
    leasing,
    run_row,
    subscription_of,
)


class ProbedStore(Store):
    async def _subscriptions(self, *conditions: Any, order_by: Sequence[Any]) -> list[Subscription]:
        statement = select(*SUBSCRIPTION_COLUMNS).where(*conditions).order_by(*order_by)
        async with self.database.reading() as connection:
            return [subscription_of(row) for row in await connection.execute(statement)]

    async def get_subscription(self, subscription_id: int) -> Subscription | None:
        found = await self._subscriptions(subscriptions.c.id == subscription_id, order_by=())
        return found[0] if found else None

    async def all_subscriptions(self) -> list[Subscription]:
        return await self._subscriptions(order_by=[subscriptions.c.id])

    async def due_subscriptions(self, now: datetime) -> list[Subscription]:
        column = subscriptions.c
        return await self._subscriptions(
            column.next_run_at <= now,
            column.paused_reason.is_(None),
            order_by=[column.next_run_at, column.id],
        )

    async def claim(
        self, subscription_id: int, worker: str, now: datetime, lease_seconds: float,
        *, force: bool = False,
    ) -> bool:  # fmt: skip
        statement = leasing(worker, now, lease_seconds, due_only=not force).where(
            subscriptions.c.id == subscription_id
        )
        return await self.database.changed(statement) == 1

    async def finish(
        self, subscription_id: int, worker: str, *, next_run_at: datetime, succeeded: bool
    ) -> bool:
        run = DigestRun(subscription_id, next_run_at, next_run_at, RunOutcome.OK, 0, None)
        parameters = ending_parameters(FinishedRun(run, next_run_at, succeeded))
        return await self.database.changed(ending(worker), parameters) == 1

    async def unreported(self, subscription_id: int, request_ids: Collection[str]) -> set[str]:
        reported = (await self.reported_by_subscription([subscription_id]))[subscription_id]
        return set(request_ids) - reported

    async def record_digest_run(self, run: DigestRun) -> None:
        if await self.get_subscription(run.subscription_id) is not None:
            async with self.database.transaction() as connection:
                await connection.execute(digest_runs.insert(), [run_row(run)])

    async def recent_digest_runs(self, subscription_id: int, limit: int) -> list[DigestRun]:
        statement = (
            select(digest_runs)
            .where(digest_runs.c.subscription_id == subscription_id)
            .order_by(digest_runs.c.started_at.desc(), digest_runs.c.id.desc())
            .limit(limit)
        )
        async with self.database.reading() as connection:
            rows = (await connection.execute(statement)).all()
        runs = []
        for row in rows:
            values = row._asdict()
            del values["id"]
            values["outcome"] = RunOutcome(values["outcome"])
            runs.append(DigestRun(**values))
        return runs

    async def find_alert_thread(
        self, channel_id: str, algorithm: str, fingerprint: str
    ) -> AlertThread | None:
        """The channel's thread of this algorithm and key (current or the one adopted)."""
        for thread in await self.channel_alert_threads(channel_id, fingerprint):
            if thread.algorithm == algorithm:
                return thread
        return None

    async def reported_count(self) -> int:
        async with self.database.reading() as connection:
            return len((await connection.execute(select(reported_records.c.request_id))).all())
