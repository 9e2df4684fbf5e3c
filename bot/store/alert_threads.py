"""Queries of alert threads: one row per (channel, algorithm, fingerprint).

A digest writes a thread's counters and a click its state, each only its own columns, so one
never reverts the other. A thread found under an older grouping strategy's fingerprint is
re-keyed by one conditional UPDATE, so exactly one group adopts it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Row, case, func, or_, select, update

from bot.domain.alerts import AlertState, AlertThread
from bot.store.engine import Database
from bot.store.schema import alert_threads

_KEY = ("channel_id", "algorithm", "fingerprint")


class AlertThreadQueries:
    """Alert threads: what digests and the alert actions read and write."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def channel_alert_threads(self, channel_id: str, fingerprint: str) -> list[AlertThread]:
        """The channel's threads of this fingerprint, of any algorithm; also those found by the
        key they had before a newer grouping adopted them (old buttons carry that one)."""
        column = alert_threads.c
        statement = select(alert_threads).where(
            column.channel_id == channel_id,
            or_(column.fingerprint == fingerprint, column.previous_fingerprint == fingerprint),
        )
        async with self._db.reading() as connection:
            rows = (await connection.execute(statement)).all()
        return [alert_thread_of(row) for row in rows]

    async def alert_threads(
        self, channel_id: str, algorithm: str, keys: Collection[str]
    ) -> list[AlertThread]:
        """The channel's threads of `algorithm` stored under any of `keys`, or adopted from one
        of them: one read for a whole digest run of a subscription. Exact keys come first."""
        if not keys:
            return []
        column = alert_threads.c
        wanted = list(keys)
        statement = select(alert_threads).where(
            column.channel_id == channel_id,
            column.algorithm == algorithm,
            or_(column.fingerprint.in_(wanted), column.previous_fingerprint.in_(wanted)),
        )
        async with self._db.reading() as connection:
            rows = (await connection.execute(statement)).all()
        threads = [alert_thread_of(row) for row in rows]
        return sorted(threads, key=lambda t: t.fingerprint not in keys)

    async def expired_mutes(self, now: datetime) -> list[AlertThread]:
        """The alert threads whose mute has run out by `now` (read once per digest run)."""
        column = alert_threads.c
        statement = select(alert_threads).where(
            column.state == AlertState.MUTED.value,
            column.muted_until.is_not(None),
            column.muted_until <= now,
        )
        async with self._db.reading() as connection:
            rows = (await connection.execute(statement)).all()
        return [alert_thread_of(row) for row in rows]

    async def count_open_alerts(self) -> int:
        """How many alerts are open or regressed (the `algo_errors_open_alerts` gauge)."""
        column = alert_threads.c
        statement = (
            select(func.count())
            .select_from(alert_threads)
            .where(column.state.in_([AlertState.OPEN.value, AlertState.REGRESSED.value]))
        )
        async with self._db.reading() as connection:
            return int((await connection.execute(statement)).scalar_one())

    async def home_alerts(
        self, user: str, channels: Collection[str], limit: int
    ) -> tuple[list[AlertThread], int]:
        """For a user's Home tab, only alerts of `channels` (those the user is in): the
        unresolved ones they own, then the open ones (neither resolved nor muted), each newest
        first, at most `limit` in all; and how many there are in all."""
        if not channels:
            return [], 0
        column = alert_threads.c
        owned = (column.owner == user) & (column.state != AlertState.RESOLVED.value)
        open_ = column.state.in_([AlertState.OPEN.value, AlertState.REGRESSED.value])
        wanted = column.channel_id.in_(list(channels)) & (owned | open_) & (column.parent_ts != "")
        mine_first = case((owned, 0), else_=1)
        statement = (
            select(alert_threads)
            .where(wanted)
            .order_by(mine_first, column.last_seen_ms.desc())
            .limit(limit)
        )
        counting = select(func.count()).select_from(alert_threads).where(wanted)
        async with self._db.reading() as connection:
            rows = (await connection.execute(statement)).all()
            total = int((await connection.execute(counting)).scalar_one())
        return [alert_thread_of(row) for row in rows], total

    async def create_alert_thread(self, thread: AlertThread) -> bool:
        """Store a new alert thread; False (and nothing changed) when its key already has one."""
        statement = (
            self._db.insert(alert_threads)
            .values(**alert_thread_values(thread))
            .on_conflict_do_nothing(index_elements=[alert_threads.c[name] for name in _KEY])
        )
        return await self._db.changed(statement) == 1

    async def adopt_alert_thread(self, thread: AlertThread) -> bool:
        """Re-key the thread stored under `thread.previous_fingerprint` to `thread.fingerprint`;
        False when another group adopted it first (or it is gone)."""
        if thread.previous_fingerprint is None:
            raise ValueError("only a thread with a previous fingerprint can be adopted")
        column = alert_threads.c
        statement = (
            update(alert_threads)
            .where(
                column.channel_id == thread.channel_id,
                column.algorithm == thread.algorithm,
                column.fingerprint == thread.previous_fingerprint,
            )
            .values(
                fingerprint=thread.fingerprint, previous_fingerprint=thread.previous_fingerprint
            )
        )
        return await self._db.changed(statement) == 1

    async def update_alert_thread(
        self,
        thread: AlertThread,
        *,
        fields: Collection[str] | None = None,
        expected: AlertThread | None = None,
    ) -> bool:
        """Write the thread's row (all but the key, or only `fields`); False when there is
        none, or (`expected`: the thread as it was read) when those fields no longer hold what
        was read: a click or a run changed them meanwhile, and nothing is written."""
        column = alert_threads.c
        values = alert_thread_values(thread)
        for key in _KEY:
            del values[key]
        if fields is not None:
            values = {name: value for name, value in values.items() if name in fields}
        conditions = [column[key] == getattr(thread, key) for key in _KEY]
        if expected is not None:
            read = alert_thread_values(expected)
            conditions += [column[name] == read[name] for name in values]
        statement = update(alert_threads).where(*conditions).values(**values)
        return await self._db.changed(statement) == 1


def alert_thread_of(row: Row[Any]) -> AlertThread:
    values = row._asdict()
    values["state"] = AlertState(values["state"])
    values["versions"] = tuple(values["versions"])
    return AlertThread(**values)


def alert_thread_values(thread: AlertThread) -> dict[str, Any]:
    return {
        "channel_id": thread.channel_id,
        "algorithm": thread.algorithm,
        "fingerprint": thread.fingerprint,
        "parent_ts": thread.parent_ts,
        "state": thread.state.value,
        "muted_until": thread.muted_until,
        "state_changed_by": thread.state_changed_by,
        "state_changed_at": thread.state_changed_at,
        "count": thread.count,
        "versions": list(thread.versions),
        "first_seen_ms": thread.first_seen_ms,
        "last_seen_ms": thread.last_seen_ms,
        "error_type": thread.error_type,
        "headline": thread.headline,
        "previous_fingerprint": thread.previous_fingerprint,
        "latest_version": thread.latest_version,
        "owner": thread.owner,
        "owner_since": thread.owner_since,
        "resolved_through": thread.resolved_through,
    }
