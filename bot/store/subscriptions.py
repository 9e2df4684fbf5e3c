"""Queries of subscriptions, their leases, the records they reported and their runs.

Every method is one short transaction, and every write that must not race is one conditional
statement whose row count decides (a claim, a finish). Times are aware UTC datetimes; record
times stay epoch milliseconds as the API gives them.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Integer, Row, Text, bindparam, case, cast, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.dml import Update

from bot.domain.alerts import (
    DigestRun,
    FinishedRun,
    NoticeKind,
    PendingNotice,
    Subscription,
)
from bot.store.engine import Database
from bot.store.schema import digest_runs, reported_records, subscriptions

# Ids per `IN (…)` list; far below SQLite's and asyncpg's bound-parameter limits.
_IN_CHUNK: Final = 500


class SubscriptionQueries:
    """Subscriptions: what the subscribe, list and digest use cases read and write."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def upsert_subscription(
        self,
        channel_id: str,
        algorithm: str,
        schedule: str,
        timezone: str,
        created_by: str,
        next_run_at: datetime,
        now: datetime,
        *,
        notify: Sequence[str] = (),
        min_count: int = 1,
    ) -> Subscription:
        """Subscribe `channel_id` to `algorithm`, or change its subscription.

        Subscribing again sets the schedule, time zone, next run, notify list and threshold
        (the caller passes what it keeps) and clears a pause; the id, `created_by`,
        `created_at`, the reported records and the failure count stay.
        """
        insert = self._db.insert(subscriptions).values(
            channel_id=channel_id,
            algorithm=algorithm,
            schedule=schedule,
            timezone=timezone,
            created_by=created_by,
            created_at=now,
            next_run_at=next_run_at,
            paused_reason=None,
            consecutive_failures=0,
            outage_notified=False,
            notify=list(notify),
            min_count=min_count,
        )
        statement = insert.on_conflict_do_update(
            index_elements=[subscriptions.c.channel_id, subscriptions.c.algorithm],
            set_={
                "schedule": insert.excluded.schedule,
                "timezone": insert.excluded.timezone,
                "next_run_at": insert.excluded.next_run_at,
                "notify": insert.excluded.notify,
                "min_count": insert.excluded.min_count,
                "paused_reason": None,
            },
        ).returning(*SUBSCRIPTION_COLUMNS)
        async with self._db.transaction() as connection:
            row = (await connection.execute(statement)).one()
        return subscription_of(row)

    async def remove_subscription(self, channel_id: str, algorithm: str) -> bool:
        """Unsubscribe; False when there was no such subscription.

        Its reported records and digest runs go with it; its alert threads stay, to be reused
        if the channel subscribes again.
        """
        statement = delete(subscriptions).where(
            subscriptions.c.channel_id == channel_id, subscriptions.c.algorithm == algorithm
        )
        return await self._db.changed(statement) == 1

    async def count_subscriptions(self) -> int:
        """How many subscriptions there are (the `algo_errors_subscriptions` gauge)."""
        statement = select(func.count()).select_from(subscriptions)
        async with self._db.reading() as connection:
            return int((await connection.execute(statement)).scalar_one())

    async def channel_subscriptions(self, channel_id: str) -> list[Subscription]:
        """The channel's subscriptions (paused ones included), by algorithm."""
        statement = (
            select(*SUBSCRIPTION_COLUMNS)
            .where(subscriptions.c.channel_id == channel_id)
            .order_by(subscriptions.c.algorithm)
        )
        async with self._db.reading() as connection:
            rows = (await connection.execute(statement)).all()
        return [subscription_of(row) for row in rows]

    # Leases: who runs a subscription now

    async def claim_due(
        self, worker: str, now: datetime, lease_seconds: float, *, everything: bool = False
    ) -> list[Subscription]:
        """Claim every due subscription (`everything`: due or not) for `worker` (unique per
        process) in one conditional UPDATE (see `leasing`) that returns the claimed rows, so a
        tick with none due costs that one statement (on the `next_run_at` index); returns what
        this worker got, earliest first."""
        await self._db.check_clock()  # replicas on several hosts must agree on leases
        statement = leasing(worker, now, lease_seconds, due_only=not everything).returning(
            *SUBSCRIPTION_COLUMNS
        )
        async with self._db.transaction() as connection:
            rows = (await connection.execute(statement)).all()
        claimed = [subscription_of(row) for row in rows]
        return sorted(claimed, key=lambda subscription: subscription.next_run_at)

    async def renew_leases(
        self, worker: str, subscription_ids: Collection[int], until: datetime
    ) -> set[int]:
        """Extend `worker`'s leases of these subscriptions to `until` (a run's heartbeat, and
        before each post); returns those it still held. One it no longer holds (expired and
        taken over, or the subscription removed) is not extended: its run stops."""
        if not subscription_ids:
            return set()
        column = subscriptions.c
        ids = list(subscription_ids)
        held: set[int] = set()
        async with self._db.transaction() as connection:
            for start in range(0, len(ids), _IN_CHUNK):
                statement = (
                    update(subscriptions)
                    .where(
                        column.id.in_(ids[start : start + _IN_CHUNK]), column.lease_owner == worker
                    )
                    .values(lease_until=until)
                    .returning(column.id)
                )
                held.update((await connection.execute(statement)).scalars())
        return held

    async def finish_runs(self, worker: str, runs: Sequence[FinishedRun]) -> None:
        """End `worker`'s leases of these runs, set their next runs, count their failures and
        record them, in one transaction (a digest run ends dozens at a time; one commit each
        would cost more than the run itself). A lease `worker` no longer holds is left alone."""
        if not runs:
            return
        async with self._db.transaction() as connection:
            await connection.execute(ending(worker), [ending_parameters(f) for f in runs])
            await connection.execute(RECORDING_RUNS, [run_row(f.run) for f in runs])

    async def pause(self, subscription_id: int, reason: str) -> bool:
        """Stop running the subscription until the channel subscribes again; False if gone.

        A lease in progress is left to its finish.
        """
        statement = (
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(paused_reason=reason)
        )
        return await self._db.changed(statement) == 1

    async def record_notice(self, subscription_id: int, notice: PendingNotice, worker: str) -> bool:
        """Store the notice before it is sent, only while `worker` holds the subscription's
        lease (one UPDATE checking it, as `record_intent`); False when it does not: do not
        post then."""
        column = subscriptions.c
        statement = (
            update(subscriptions)
            .where(column.id == subscription_id, column.lease_owner == worker)
            .values(pending_notice=_notice_text(notice))
        )
        return await self._db.changed(statement) == 1

    async def settle_notice(
        self, subscription_id: int, notice: PendingNotice, *, outage_notified: bool
    ) -> bool:
        """The notice was confirmed (or found in the channel, or found never sent): forget it
        and record whether the channel now knows of an outage, in one UPDATE, only while it is
        the notice stored (a run whose lease ran out meanwhile does not settle the next
        holder's); False when it is not, or the subscription is gone."""
        column = subscriptions.c
        statement = (
            update(subscriptions)
            .where(
                column.id == subscription_id,
                column.pending_notice.startswith(
                    f"{notice.kind.value}:{notice.id}:", autoescape=True
                ),
            )
            .values(pending_notice=None, outage_notified=outage_notified)
        )
        return await self._db.changed(statement) == 1

    # Reported records

    async def reported_by_subscription(
        self, subscription_ids: Collection[int]
    ) -> dict[int, frozenset[str]]:
        """Every request id each subscription has reported (pruning keeps this to about the
        API's window): a digest run reads them a window of subscriptions at a time, not one
        algorithm at a time. Each subscription's ids as a JSON array (a row per id cost a
        digest run more CPU than its requests), all of a window's in one row; the channels of
        one algorithm mostly reported the same records, and then share one set, decoded once
        when their arrays are the same text (a window of 500 is read in 11-16 ms of CPU
        instead of 15-23)."""
        reported: dict[int, frozenset[str]] = dict.fromkeys(subscription_ids, frozenset())
        ids = list(reported)
        column = reported_records.c
        gathered = (
            func.json_group_array(column.request_id)
            if self._db.dialect == "sqlite"
            else cast(func.json_agg(column.request_id), Text)
        )
        shared: dict[frozenset[str], frozenset[str]] = {}
        by_text: dict[str, frozenset[str]] = {}
        async with self._db.reading() as connection:
            for start in range(0, len(ids), _IN_CHUNK):
                arrays = (
                    select(column.subscription_id, gathered.label("ids"))
                    .where(column.subscription_id.in_(ids[start : start + _IN_CHUNK]))
                    .group_by(column.subscription_id)
                    .subquery()
                )
                # All of them in one row, `id:[…]` each, apart by a character JSON escapes:
                # SQLite's thread waits for the GIL at every row it hands over (see
                # `engine.share_the_gil_with_sqlite`), and a busy run made 500 rows take 0.5 s.
                one_row = select(
                    func.aggregate_strings(
                        cast(arrays.c.subscription_id, Text).concat(":").concat(arrays.c.ids),
                        _APART,
                    )
                )
                for pair in ((await connection.scalar(one_row)) or "").split(_APART):
                    if not pair:
                        continue
                    subscription_id, _, request_ids = pair.partition(":")
                    known = by_text.get(request_ids)
                    if known is None:
                        read = frozenset(json.loads(request_ids))
                        known = by_text[request_ids] = shared.setdefault(read, read)
                    reported[int(subscription_id)] = known
        return reported

    async def mark_reported(
        self, subscription_id: int, records: Iterable[tuple[str, int]], now: datetime
    ) -> None:
        """Remember `(request_id, created_at_ms)` records as reported (Slack confirmed them).

        Marking a record again changes nothing. For a subscription removed meanwhile, nothing
        is stored.
        """
        created_at_ms_by_id = dict(records)
        if not created_at_ms_by_id:
            return
        rows = [
            {
                "subscription_id": subscription_id,
                "request_id": request_id,
                "created_at_ms": created_at_ms,
                "reported_at": now,
            }
            for request_id, created_at_ms in created_at_ms_by_id.items()
        ]
        statement = self._db.insert(reported_records).on_conflict_do_nothing(
            index_elements=[reported_records.c.subscription_id, reported_records.c.request_id]
        )
        try:
            async with self._db.transaction() as connection:
                await connection.execute(statement, rows)
        except IntegrityError:
            # The foreign key: the subscription went while its digest was running.
            async with self._db.reading() as connection:
                exists = await connection.scalar(
                    select(subscriptions.c.id).where(subscriptions.c.id == subscription_id)
                )
            if exists is None:
                return
            raise

    async def prune_reported(self, before_ms: int) -> int:
        """Forget reported records created before `before_ms` (epoch ms); how many went.

        Call it with the API's window plus a margin: an older record can no longer come back.
        """
        statement = delete(reported_records).where(reported_records.c.created_at_ms < before_ms)
        return await self._db.changed(statement)

    async def prune_digest_runs(self, before: datetime) -> int:
        """Forget runs started before `before`; how many went."""
        return await self._db.changed(delete(digest_runs).where(digest_runs.c.started_at < before))


_APART: Final = "\x1e"
"""Between the subscriptions of `reported_by_subscription`'s one row: a control character,
which a JSON array of request ids can only hold escaped."""

SUBSCRIPTION_COLUMNS: Final = tuple(
    subscriptions.c[name]
    for name in (
        "id",
        "channel_id",
        "algorithm",
        "schedule",
        "timezone",
        "created_by",
        "created_at",
        "next_run_at",
        "paused_reason",
        "consecutive_failures",
        "outage_notified",
        "notify",
        "min_count",
        "pending_notice",
    )
)


def subscription_of(row: Row[Any]) -> Subscription:
    """A row of `SUBSCRIPTION_COLUMNS`, which are `Subscription`'s fields in their order (read
    by position: a run claims thousands at once)."""
    values: list[Any] = list(row)
    values[-3] = tuple(values[-3] or ())  # notify
    values[-1] = _notice_of(values[-1])
    return Subscription(*values)


def _notice_text(notice: PendingNotice) -> str:
    return f"{notice.kind.value}:{notice.id}:{notice.created_at.timestamp()!r}"


def _notice_of(text: str | None) -> PendingNotice | None:
    """`_notice_text` read back; None for none, or for text no release of the bot wrote."""
    if not text:
        return None
    kind, _, rest = text.partition(":")
    notice_id, _, epoch = rest.partition(":")
    try:
        return PendingNotice(NoticeKind(kind), notice_id, datetime.fromtimestamp(float(epoch), UTC))
    except ValueError:
        return None


def leasing(worker: str, now: datetime, lease_seconds: float, *, due_only: bool) -> Update:
    """The conditional UPDATE that leases subscriptions to `worker`: not paused, no running
    lease (none, or an expired one: its holder is presumed dead), and due unless not
    `due_only`. One statement, so of any number of workers exactly one gets each."""
    if lease_seconds <= 0:
        raise ValueError("lease_seconds must be positive")
    column = subscriptions.c
    conditions = [
        column.paused_reason.is_(None),
        or_(column.lease_until.is_(None), column.lease_until <= now),
    ]
    if due_only:
        conditions.append(column.next_run_at <= now)
    # On PostgreSQL the rows are picked, and locked, by a subquery that passes over rows
    # another transaction holds (SKIP LOCKED: they are that one's, or the next tick's). A bare
    # UPDATE locks rows in the order its plan visits them (the table's, or the index's): two
    # claims visiting in opposite orders deadlocked, and one failed. SQLite has one writer.
    picked = select(column.id).where(*conditions).with_for_update(skip_locked=True)
    return (
        update(subscriptions)
        .where(column.id.in_(picked.scalar_subquery()), *conditions)
        .values(lease_owner=worker, lease_until=now + timedelta(seconds=lease_seconds))
    )


def ending(worker: str) -> Update:
    """The UPDATE that ends `worker`'s lease (parameters: `ending_parameters`); a worker that
    no longer holds the lease changes nothing. A success resets `consecutive_failures`, a
    failure adds one."""
    column = subscriptions.c
    return (
        update(subscriptions)
        .where(column.id == bindparam("sid"), column.lease_owner == worker)
        .values(
            next_run_at=bindparam("next_run"),
            consecutive_failures=case((bindparam("ok"), 0), else_=column.consecutive_failures + 1),
            lease_owner=None,
            lease_until=None,
        )
    )


def ending_parameters(finished: FinishedRun) -> dict[str, Any]:
    return {
        "sid": finished.run.subscription_id,
        "next_run": finished.next_run_at,
        "ok": finished.succeeded,
    }


_RUN_COLUMNS: Final = (
    "subscription_id", "started_at", "finished_at", "outcome", "posted", "detail",
)  # fmt: skip

RECORDING_RUNS: Final = digest_runs.insert().from_select(
    _RUN_COLUMNS,
    select(*(bindparam(name, type_=digest_runs.c[name].type) for name in _RUN_COLUMNS)).where(
        select(subscriptions.c.id)
        .where(subscriptions.c.id == bindparam("subscription_id", type_=Integer))
        .with_for_update(read=True, key_share=True)
        .exists()
    ),
)
"""The INSERT of a run (parameters: `run_row`) that keeps nothing of a subscription removed
meanwhile: no read of which still exist first, no row per run crossing back. On PostgreSQL
the check locks the row (FOR KEY SHARE, as `record_intent`'s FOR SHARE does): a removal not
yet committed is waited for and then seen, where the foreign key's own check failed the whole
transaction (every run of the window left unended)."""


def run_row(run: DigestRun) -> dict[str, Any]:
    return {
        "subscription_id": run.subscription_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "outcome": run.outcome.value,
        "posted": run.posted,
        "detail": run.detail,
    }
