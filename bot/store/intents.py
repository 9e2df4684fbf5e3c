"""Queries of post intents: recorded before a digest posts, settled once Slack confirmed."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from sqlalchemy import Row, delete, literal, select, update

from bot.domain.alerts import PostIntent, PostKind
from bot.store.engine import Database
from bot.store.schema import post_intents, subscriptions

_IN_CHUNK: Final = 500


class IntentQueries:
    """Post intents: what a digest run records, settles and finds open after a crash."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def record_intent(self, intent: PostIntent, worker: str) -> bool:
        """Store the intent before its post is sent, only while `worker` holds the lease of
        its subscription; False (nothing stored) when it does not: another worker took the
        subscription over, or it was removed meanwhile. Do not post then.

        One INSERT that checks the lease itself, so a post needs no renewal of its own (the
        run's heartbeat extends the lease). On PostgreSQL the check locks the subscription's
        row (FOR SHARE) as a renewal's UPDATE would: a claim by another worker meanwhile is
        either seen (nothing stored) or waits for this intent, and then finds it open. That the
        post itself lands before the other worker looks for it in Slack rests on the run's
        guard (`held()`), which stops posting a quarter of a lease before the lease ends."""
        column = subscriptions.c
        held = (
            select(column.id)
            .where(column.id == intent.subscription_id, column.lease_owner == worker)
            .with_for_update(read=True)
        )
        values = _values(intent)
        fields = (literal(v, post_intents.c[name].type).label(name) for name, v in values.items())
        row = select(*fields).where(held.exists())
        statement = post_intents.insert().from_select(list(values), row)
        return await self._db.changed(statement) == 1

    async def settle_intent(self, intent_id: str, *, then: PostIntent | None = None) -> bool:
        """Slack confirmed the post (or it was found there): forget the intent; settling one
        twice, or one never recorded, changes nothing.

        With `then`, the post that follows it (a new alert's trace reply) takes its place: one
        UPDATE turns the intent's row into the follow-up's, so a crash leaves one or the other
        open, never both nor neither. False (nothing recorded) when the intent was gone: its
        subscription was removed, or another worker took it over and settled it."""
        column = post_intents.c
        if then is None:
            await self._db.changed(delete(post_intents).where(column.id == intent_id))
            return True
        values = _values(then)
        del values["subscription_id"]
        statement = (
            update(post_intents)
            .where(column.id == intent_id, column.subscription_id == then.subscription_id)
            .values(**values)
        )
        return await self._db.changed(statement) == 1

    async def open_intents(self, subscription_ids: Collection[int]) -> dict[int, list[PostIntent]]:
        """Each subscription's intents not settled yet, oldest first: one read per run."""
        found: dict[int, list[PostIntent]] = {sid: [] for sid in subscription_ids}
        ids = list(found)
        column = post_intents.c
        async with self._db.reading() as connection:
            for start in range(0, len(ids), _IN_CHUNK):
                statement = (
                    select(post_intents)
                    .where(column.subscription_id.in_(ids[start : start + _IN_CHUNK]))
                    .order_by(column.created_at, column.id)
                )
                for row in await connection.execute(statement):
                    found[row.subscription_id].append(_intent(row))
        return found


def _values(intent: PostIntent) -> dict[str, Any]:
    return {
        "id": intent.id,
        "subscription_id": intent.subscription_id,
        "kind": intent.kind.value,
        "channel_id": intent.channel_id,
        "algorithm": intent.algorithm,
        "fingerprint": intent.fingerprint,
        "thread_ts": intent.thread_ts,
        "request_ids": list(intent.request_ids),
        "created_at": intent.created_at,
    }


def _intent(row: Row[Any]) -> PostIntent:
    values = row._asdict()
    values["kind"] = PostKind(values["kind"])
    values["request_ids"] = tuple(values["request_ids"])
    return PostIntent(**values)
