"""Queries of post intents: recorded before a digest posts, settled once Slack confirmed,
with what the confirmation made true (folded later, see `bot.store.folding`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from sqlalchemy import ColumnElement, literal, or_, select, update

from bot.domain.alerts import PostEffects, PostIntent, PostKind
from bot.store.alert_threads import alert_thread_values
from bot.store.engine import Database
from bot.store.folding import effects_json, fold_confirmed
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

    async def settle_intent(
        self,
        intent_id: str,
        *,
        then: PostIntent | None = None,
        effects: PostEffects | None = None,
    ) -> bool:
        """Slack confirmed the post (or it was found there): the intent is settled, and what
        the confirmation made true (`effects`) recorded on its row by the same statement, to be
        carried out with others' by a fold (`bot.store.folding`), not a statement per post.
        Settling one twice, or one never recorded, changes nothing; False when there was no
        such intent (and `effects` were not recorded).

        A settled intent belongs to no subscription any more: no run takes it up again, and
        the fold forgets it.

        With `then`, the post that follows it (a new alert's trace reply) takes its place: one
        UPDATE turns the intent's row into the follow-up's, still open, with the effects of
        the first, so a crash leaves one or the other open, never both nor neither. False
        (nothing recorded) when the intent was gone: its subscription was removed, or another
        worker took it over and settled it."""
        column = post_intents.c
        values: dict[str, Any] = {}
        if effects is not None:
            thread = None if effects.thread is None else alert_thread_values(effects.thread)
            values["effects"] = effects_json(effects, thread)
        if then is None:
            statement = update(post_intents).where(column.id == intent_id)
            return await self._db.changed(statement.values(subscription_id=None, **values)) == 1
        values |= _values(then)
        del values["subscription_id"]
        statement = (
            update(post_intents)
            .where(column.id == intent_id, column.subscription_id == then.subscription_id)
            .values(**values)
        )
        return await self._db.changed(statement) == 1

    async def open_intents(self, subscription_ids: Collection[int]) -> dict[int, list[PostIntent]]:
        """Each subscription's intents not settled yet, oldest first: one read per run.

        What confirmed posts made true and no fold carried out yet (a run cut short between
        a confirmation and its fold; the same read finds it) is folded before this returns, so
        the run's reads of what its subscriptions reported and of their threads include it."""
        found: dict[int, list[PostIntent]] = {sid: [] for sid in subscription_ids}
        ids = list(found)
        column = post_intents.c
        unfolded = False
        async with self._db.reading() as connection:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                wanted: ColumnElement[bool] = column.subscription_id.in_(chunk)
                if start == 0:  # and, once, the settled intents (of no subscription any more)
                    wanted = or_(wanted, column.subscription_id.is_(None))
                statement = (
                    select(*_INTENT_COLUMNS, column.effects.is_not(None).label("unfolded"))
                    .where(wanted)
                    .order_by(column.created_at, column.id)
                )
                for row in await connection.execute(statement):
                    unfolded = unfolded or row.unfolded or row.subscription_id is None
                    if row.subscription_id is not None:
                        found[row.subscription_id].append(_intent(row._asdict()))
        if unfolded:
            await fold_confirmed(self._db)
        return found

    async def fold_confirmed(self) -> None:
        """Carry out what confirmed posts made true and forget the settled intents: a few
        statements for any number of posts (see `bot.store.folding`)."""
        await fold_confirmed(self._db)


_INTENT_COLUMNS: Final = tuple(c for c in post_intents.c if c.name != "effects")


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


def _intent(values: dict[str, Any]) -> PostIntent:
    del values["unfolded"]
    values["kind"] = PostKind(values["kind"])
    values["request_ids"] = tuple(values["request_ids"])
    return PostIntent(**values)
