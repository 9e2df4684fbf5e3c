"""What confirmed posts made true, folded into the alert threads and the reported records in
batches, whatever the number of posts.

A digest's post is confirmed by one statement on its intent's row (`IntentQueries
.settle_intent`), which records its `PostEffects` there: the records it told of, a new alert's
thread. `fold_confirmed` carries out the effects of every such row in a few statements and
forgets the settled intents. Folding is idempotent (a thread whose key has one is left alone,
a record reported twice is kept once) and safe at any moment in any process, so it is done
wherever a read needs it done:
- a digest run before it reads what is new (what a run cut short between a confirmation and
  its fold left behind: `IntentQueries.open_intents`), and after each window of subscriptions;
- the reads that answer people (an alert's buttons, the Home tab) first (`fold_if_pending`),
  so a confirmed alert is never missing there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Integer,
    Text,
    bindparam,
    delete,
    exists,
    null,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.domain.alerts import PostEffects
from bot.store.engine import Database
from bot.store.schema import (
    UTCDateTime,
    alert_threads,
    post_intents,
    reported_records,
    subscriptions,
)

_IN_CHUNK: Final = 500
_FOLD_LOCK_KEY: Final = 0x616C676F_666F6C64  # "algofold" in ASCII
"""PostgreSQL's advisory lock of a fold: folds in several processes go one after the other,
never each taking a part of the rows (which could deadlock)."""


def effects_json(effects: PostEffects, thread_values: dict[str, Any] | None) -> dict[str, Any]:
    """The `effects` column of a settled intent (`thread_values`: the thread's row)."""
    encoded: dict[str, Any] = {
        "subscription_id": effects.subscription_id,
        "reported": [list(record) for record in effects.reported],
    }
    if thread_values is not None:
        encoded["thread"] = {
            name: value.isoformat() if isinstance(value, datetime) else value
            for name, value in thread_values.items()
        }
    return encoded


async def fold_if_pending(database: Database) -> None:
    """Fold first if some confirmed post's effects wait (one read when none do)."""
    waiting = select(post_intents.c.id).where(post_intents.c.effects.is_not(None)).limit(1)
    async with database.reading() as connection:
        if (await connection.execute(waiting)).first() is None:
            return
    await fold_confirmed(database)


async def fold_confirmed(database: Database) -> None:
    """Carry out the effects of every confirmed post not folded yet, and forget the settled
    intents: one transaction of a few statements (the settled rows deleted, the effects of
    intents still open taken off them, the threads inserted, the records marked)."""
    try:
        await _fold(database)
    except IntegrityError:
        # A subscription removed between the check of its reported records and their insert
        # (PostgreSQL): the check leaves it out the second time.
        await _fold(database)


async def _fold(database: Database) -> None:
    column = post_intents.c
    async with database.transaction() as connection:
        if database.dialect == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            await connection.execute(lock, {"key": _FOLD_LOCK_KEY})
        settled = delete(post_intents).where(column.subscription_id.is_(None))
        found = list((await connection.execute(settled.returning(column.effects))).scalars())
        # A new alert's effects ride on its trace reply's intent, open until Slack takes the
        # reply: carried out now all the same, and taken off it.
        still_open = (
            select(column.id, column.effects)
            .where(column.subscription_id.is_not(None), column.effects.is_not(None))
            .with_for_update()
        )
        taken = (await connection.execute(still_open)).all()
        for start in range(0, len(taken), _IN_CHUNK):
            ids = [row.id for row in taken[start : start + _IN_CHUNK]]
            cleared = update(post_intents).where(column.id.in_(ids)).values(effects=null())
            await connection.execute(cleared)
        found += [row.effects for row in taken]
        await _carry_out(database, connection, [e for e in found if e is not None])


async def _carry_out(
    database: Database, connection: AsyncConnection, found: list[dict[str, Any]]
) -> None:
    threads = [_thread_row(e["thread"]) for e in found if e.get("thread") is not None]
    if threads:
        key = [alert_threads.c[name] for name in ("channel_id", "algorithm", "fingerprint")]
        statement = database.insert(alert_threads).on_conflict_do_nothing(index_elements=key)
        await connection.execute(statement, threads)
    now = datetime.now(UTC)
    reported = {
        (e["subscription_id"], request_id): created_at_ms
        for e in found
        for request_id, created_at_ms in e["reported"]
    }
    if reported:
        rows = [
            {"sid": sid, "rid": request_id, "ms": created_at_ms, "at": now}
            for (sid, request_id), created_at_ms in reported.items()
        ]
        await connection.execute(_marking(database), rows)


def _marking(database: Database) -> Any:
    """Mark one record reported, unless its subscription was removed meanwhile (no row then,
    where a plain insert would break the foreign key)."""
    sid = bindparam("sid", type_=Integer)
    row = select(
        sid,
        bindparam("rid", type_=Text),
        bindparam("ms", type_=BigInteger),
        bindparam("at", type_=UTCDateTime),
    ).where(exists().where(subscriptions.c.id == sid))
    column = reported_records.c
    return (
        database.insert(reported_records)
        .from_select(["subscription_id", "request_id", "created_at_ms", "reported_at"], row)
        .on_conflict_do_nothing(index_elements=[column.subscription_id, column.request_id])
    )


def _thread_row(encoded: dict[str, Any]) -> dict[str, Any]:
    row = dict(encoded)
    for name, value in encoded.items():
        if isinstance(alert_threads.c[name].type, UTCDateTime) and isinstance(value, str):
            row[name] = datetime.fromisoformat(value)
    return row
