"""`Store`: rows in, models out, the same code on SQLite (aiosqlite) and PostgreSQL (asyncpg).

Every method is one short transaction, and every write that must not race is one conditional
statement whose row count decides (a claim, a finish, a first alert thread). Times are aware
UTC datetimes; record times stay epoch milliseconds as the API gives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    CursorResult,
    Row,
    Table,
    bindparam,
    case,
    delete,
    event,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Update

from bot.store.exceptions import InvalidDatabaseUrl, StoreUnavailable
from bot.store.models import AlertState, AlertThread, DigestRun, FinishedRun, Subscription
from bot.store.schema import alert_threads, digest_runs, reported_records, subscriptions

MIGRATIONS: Final = Path(__file__).parent / "migrations"

# How long a SQLite connection waits for another writer (another process included) before
# giving up with "database is locked". Writes here are single short statements.
SQLITE_BUSY_TIMEOUT_MS: Final = 5_000

# Request ids per `IN (…)` list; far below SQLite's and asyncpg's bound-parameter limits.
_IN_CHUNK: Final = 500

# Any fixed key: PostgreSQL processes opening the store at once migrate one after the other.
_MIGRATION_LOCK_KEY: Final = 0x616C676F_6572  # "algoer" in ASCII

_USAGE = "use sqlite:///path/to/file.db or postgresql://user@host:5432/database"


class Store:
    """The bot's persistent state. Open with `await Store.open(url)`, end with `await close()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        """Wrap an engine whose database is already at the head revision (see `open`)."""
        self._engine = engine
        dialect = engine.dialect.name
        if dialect not in {"sqlite", "postgresql"}:
            raise InvalidDatabaseUrl(f"the store does not support {dialect}: {_USAGE}")
        self._dialect = dialect
        # SQLite has one writer at a time; connections of one process that collide wait in
        # SQLite's busy handler, which sleeps up to 100 ms a try. Taking turns in-process
        # instead keeps the busy handler for other processes.
        self._turn = asyncio.Lock() if dialect == "sqlite" else contextlib.nullcontext()

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect to `url` and upgrade its schema to the newest revision.

        `sqlite:///path.db` (a file: relative to the working directory, `sqlite:////abs.db`
        absolute) or `postgresql://user:password@host:port/database`; for PostgreSQL the URL is
        handed to asyncpg as is, so libpq options such as `sslmode=require` work, and any other
        query parameter is a server setting (`?search_path=algo_errors` keeps the tables in
        that schema). Several processes may open one database at once: they migrate in turn.

        Raises `InvalidDatabaseUrl` for anything else (an in-memory SQLite included: claims
        across processes and WAL need a file), `StoreUnavailable` when it cannot connect or the
        database refuses (no such role or database, no right to create the tables).
        """
        engine = _create_engine(url)
        try:
            if engine.dialect.name == "sqlite":
                await _probe_sqlite_file(engine.url)
            async with _translated_errors(), engine.connect() as connection:
                await connection.run_sync(_upgrade_to_head)
                await connection.commit()
        except DBAPIError as error:
            # Refused at connect or at migrating (no such role or database, no right to
            # create tables): either way the bot cannot start with this database.
            await engine.dispose()
            raise StoreUnavailable(_one_line(f"cannot open the store: {error.orig}")) from error
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        """Close every connection. The store cannot be used afterwards."""
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # Subscriptions

    async def upsert_subscription(
        self,
        channel_id: str,
        algorithm: str,
        schedule: str,
        timezone: str,
        created_by: str,
        next_run_at: datetime,
        now: datetime,
    ) -> Subscription:
        """Subscribe `channel_id` to `algorithm`, or change the schedule of its subscription.

        Subscribing again sets the schedule, time zone and next run and clears a pause; the id,
        `created_by`, `created_at`, the reported records and the failure count stay.
        """
        insert = self._insert(subscriptions).values(
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
        )
        statement = insert.on_conflict_do_update(
            index_elements=[subscriptions.c.channel_id, subscriptions.c.algorithm],
            set_={
                "schedule": insert.excluded.schedule,
                "timezone": insert.excluded.timezone,
                "next_run_at": insert.excluded.next_run_at,
                "paused_reason": None,
            },
        ).returning(*_SUBSCRIPTION_COLUMNS)
        async with self._transaction() as connection:
            row = (await connection.execute(statement)).one()
        return _subscription(row)

    async def remove_subscription(self, channel_id: str, algorithm: str) -> bool:
        """Unsubscribe; False when there was no such subscription.

        Its reported records and digest runs go with it; its alert threads stay, to be reused
        if the channel subscribes again.
        """
        statement = delete(subscriptions).where(
            subscriptions.c.channel_id == channel_id, subscriptions.c.algorithm == algorithm
        )
        return await self._changed(statement) == 1

    async def get_subscription(self, subscription_id: int) -> Subscription | None:
        rows = await self._subscriptions(subscriptions.c.id == subscription_id)
        return rows[0] if rows else None

    async def channel_subscriptions(self, channel_id: str) -> list[Subscription]:
        """The channel's subscriptions (paused ones included), by algorithm."""
        return await self._subscriptions(
            subscriptions.c.channel_id == channel_id, order_by=[subscriptions.c.algorithm]
        )

    async def all_subscriptions(self) -> list[Subscription]:
        """Every subscription (paused ones included), oldest first: for `digest --once --all`."""
        return await self._subscriptions(order_by=[subscriptions.c.id])

    async def due_subscriptions(self, now: datetime) -> list[Subscription]:
        """The subscriptions not paused whose next run is at or before `now`, earliest first.

        One may be running elsewhere right now: `claim` is what decides who runs it.
        """
        return await self._subscriptions(
            subscriptions.c.next_run_at <= now,
            subscriptions.c.paused_reason.is_(None),
            order_by=[subscriptions.c.next_run_at, subscriptions.c.id],
        )

    # Leases: who runs a subscription now

    async def claim(
        self,
        subscription_id: int,
        worker: str,
        now: datetime,
        lease_seconds: float,
        *,
        force: bool = False,
    ) -> bool:
        """Take the subscription for a run by `worker` (unique per process); True if taken.

        Taken only when it is not paused, is due (`next_run_at <= now`, unless `force`) and no
        other lease is running (none, or one that expired: its holder is presumed dead). One
        conditional UPDATE, so of any number of workers, in any number of processes, exactly
        one gets it. The lease lasts `lease_seconds`; `finish` ends it.
        """
        statement = _leasing(worker, now, lease_seconds, due_only=not force).where(
            subscriptions.c.id == subscription_id
        )
        return await self._changed(statement) == 1

    async def claim_due(
        self, worker: str, now: datetime, lease_seconds: float, *, everything: bool = False
    ) -> list[Subscription]:
        """Claim every due subscription (`everything`: due or not) in one conditional UPDATE,
        with the same rules as `claim`; returns what this worker got, earliest first."""
        column = subscriptions.c
        statement = _leasing(worker, now, lease_seconds, due_only=not everything).returning(
            column.id
        )
        async with self._transaction() as connection:
            claimed = [row.id for row in await connection.execute(statement)]
        if not claimed:
            return []
        return await self._subscriptions(
            column.id.in_(claimed), column.lease_owner == worker, order_by=[column.next_run_at]
        )

    async def finish(
        self, subscription_id: int, worker: str, *, next_run_at: datetime, succeeded: bool
    ) -> bool:
        """End `worker`'s lease: set the next run and count the run; True if it took effect.

        A success resets `consecutive_failures`, a failure adds one. Does nothing (False) when
        `worker` no longer holds the lease (it expired and another worker took it over).
        """
        params = {"sid": subscription_id, "next_run": next_run_at, "ok": succeeded}
        async with self._transaction() as connection:
            result: CursorResult[Any] = await connection.execute(_ending(worker), params)
        return result.rowcount == 1

    async def finish_runs(self, worker: str, runs: Sequence[FinishedRun]) -> None:
        """`finish` and `record_digest_run` for many subscriptions in one transaction (a digest
        run ends dozens at a time; one commit each would cost more than the run itself)."""
        if not runs:
            return
        column = subscriptions.c
        async with self._transaction() as connection:
            await connection.execute(
                _ending(worker),
                [
                    {"sid": f.run.subscription_id, "next_run": f.next_run_at, "ok": f.succeeded}
                    for f in runs
                ],
            )
            ids = [finished.run.subscription_id for finished in runs]
            present = set(
                (await connection.execute(select(column.id).where(column.id.in_(ids)))).scalars()
            )
            rows = [
                _run_row(f.run)
                for f in runs
                if f.run.subscription_id in present  # removed meanwhile: nothing to keep
            ]
            if rows:
                await connection.execute(digest_runs.insert(), rows)

    async def pause(self, subscription_id: int, reason: str) -> bool:
        """Stop running the subscription until the channel subscribes again; False if gone.

        A lease in progress is left to its `finish`.
        """
        statement = (
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(paused_reason=reason)
        )
        return await self._changed(statement) == 1

    async def set_outage_notified(self, subscription_id: int, value: bool) -> bool:
        """Record whether the channel was told its cluster is unreachable; False if gone."""
        statement = (
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(outage_notified=value)
        )
        return await self._changed(statement) == 1

    # Reported records

    async def unreported(self, subscription_id: int, request_ids: Collection[str]) -> set[str]:
        """Those of `request_ids` that the subscription has not reported yet."""
        wanted = list(dict.fromkeys(request_ids))
        reported: set[str] = set()
        async with self._reading() as connection:
            for start in range(0, len(wanted), _IN_CHUNK):
                statement = select(reported_records.c.request_id).where(
                    reported_records.c.subscription_id == subscription_id,
                    reported_records.c.request_id.in_(wanted[start : start + _IN_CHUNK]),
                )
                reported.update((await connection.execute(statement)).scalars())
        return set(wanted) - reported

    async def reported_by_subscription(
        self, subscription_ids: Collection[int]
    ) -> dict[int, set[str]]:
        """Every request id each subscription has reported (pruning keeps this to about the
        API's window): one read at the start of a digest run instead of one per algorithm."""
        reported: dict[int, set[str]] = {sid: set() for sid in subscription_ids}
        ids = list(reported)
        column = reported_records.c
        async with self._reading() as connection:
            for start in range(0, len(ids), _IN_CHUNK):
                statement = select(column.subscription_id, column.request_id).where(
                    column.subscription_id.in_(ids[start : start + _IN_CHUNK])
                )
                for row in await connection.execute(statement):
                    reported[row.subscription_id].add(row.request_id)
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
        statement = self._insert(reported_records).on_conflict_do_nothing(
            index_elements=[reported_records.c.subscription_id, reported_records.c.request_id]
        )
        await self._insert_for_subscription(subscription_id, statement, rows)

    async def prune_reported(self, before_ms: int) -> int:
        """Forget reported records created before `before_ms` (epoch ms); how many went.

        Call it with the API's window plus a margin: an older record can no longer come back.
        """
        statement = delete(reported_records).where(reported_records.c.created_at_ms < before_ms)
        return await self._changed(statement)

    # Alert threads

    async def get_alert_thread(
        self, channel_id: str, algorithm: str, fingerprint: str
    ) -> AlertThread | None:
        column = alert_threads.c
        statement = select(alert_threads).where(
            column.channel_id == channel_id,
            column.algorithm == algorithm,
            column.fingerprint == fingerprint,
        )
        async with self._reading() as connection:
            row = (await connection.execute(statement)).one_or_none()
        return None if row is None else _alert_thread(row)

    async def expired_mutes(self, now: datetime) -> list[AlertThread]:
        """The alert threads whose mute has run out by `now` (read once per digest run)."""
        column = alert_threads.c
        statement = select(alert_threads).where(
            column.state == AlertState.MUTED.value,
            column.muted_until.is_not(None),
            column.muted_until <= now,
        )
        async with self._reading() as connection:
            rows = (await connection.execute(statement)).all()
        return [_alert_thread(row) for row in rows]

    async def create_alert_thread(self, thread: AlertThread) -> bool:
        """Store a new alert thread; False (and nothing changed) when its key already has one."""
        statement = (
            self._insert(alert_threads)
            .values(**_alert_thread_values(thread))
            .on_conflict_do_nothing(
                index_elements=[
                    alert_threads.c.channel_id,
                    alert_threads.c.algorithm,
                    alert_threads.c.fingerprint,
                ]
            )
        )
        return await self._changed(statement) == 1

    async def update_alert_thread(
        self, thread: AlertThread, *, fields: Collection[str] | None = None
    ) -> bool:
        """Write the thread's row (all but the key, or only `fields`); False when there is
        none. A digest writes the counters and a click the state, each only its own columns,
        so one never reverts the other."""
        column = alert_threads.c
        values = _alert_thread_values(thread)
        for key in ("channel_id", "algorithm", "fingerprint"):
            del values[key]
        if fields is not None:
            values = {name: value for name, value in values.items() if name in fields}
        statement = (
            update(alert_threads)
            .where(
                column.channel_id == thread.channel_id,
                column.algorithm == thread.algorithm,
                column.fingerprint == thread.fingerprint,
            )
            .values(**values)
        )
        return await self._changed(statement) == 1

    async def renew_lease(self, subscription_id: int, worker: str, until: datetime) -> bool:
        """Extend `worker`'s lease before another post; False when it no longer holds it (it
        expired and someone took over, or the subscription was removed): stop then."""
        column = subscriptions.c
        statement = (
            update(subscriptions)
            .where(column.id == subscription_id, column.lease_owner == worker)
            .values(lease_until=until)
        )
        return await self._changed(statement) == 1

    # Digest runs

    async def record_digest_run(self, run: DigestRun) -> None:
        """Keep what a run did. For a subscription removed meanwhile, nothing is stored."""
        await self._insert_for_subscription(
            run.subscription_id, digest_runs.insert(), [_run_row(run)]
        )

    async def recent_digest_runs(self, subscription_id: int, limit: int) -> list[DigestRun]:
        """The subscription's latest `limit` runs, newest first."""
        statement = (
            select(digest_runs)
            .where(digest_runs.c.subscription_id == subscription_id)
            .order_by(digest_runs.c.started_at.desc(), digest_runs.c.id.desc())
            .limit(limit)
        )
        async with self._transaction() as connection:
            rows = (await connection.execute(statement)).all()
        return [_digest_run(row) for row in rows]

    async def prune_digest_runs(self, before: datetime) -> int:
        """Forget runs started before `before`; how many went."""
        return await self._changed(delete(digest_runs).where(digest_runs.c.started_at < before))

    # Plumbing

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: on SQLite, the process's writers take turns."""
        async with self._turn, _translated_errors(), self._engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction: in WAL mode readers need no turn."""
        async with _translated_errors(), self._engine.begin() as connection:
            yield connection

    async def _changed(self, statement: Any) -> int:
        """Run one write statement in its own transaction; the number of rows it changed."""
        async with self._transaction() as connection:
            result: CursorResult[Any] = await connection.execute(statement)
        return result.rowcount

    async def _subscriptions(
        self, *conditions: Any, order_by: Sequence[Any] = ()
    ) -> list[Subscription]:
        statement = select(*_SUBSCRIPTION_COLUMNS).where(*conditions).order_by(*order_by)
        async with self._reading() as connection:
            rows = (await connection.execute(statement)).all()
        return [_subscription(row) for row in rows]

    def _insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT with this backend's `ON CONFLICT` clauses."""
        return sqlite.insert(table) if self._dialect == "sqlite" else postgresql.insert(table)

    async def _insert_for_subscription(
        self, subscription_id: int, statement: Any, rows: list[dict[str, Any]]
    ) -> None:
        """Insert rows that reference a subscription, doing nothing if it was removed."""
        try:
            async with self._transaction() as connection:
                await connection.execute(statement, rows)
        except IntegrityError:
            # The foreign key: the subscription went while its digest was running.
            if await self.get_subscription(subscription_id) is None:
                return
            raise


_SUBSCRIPTION_COLUMNS: Final = tuple(
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
    )
)


def _subscription(row: Row[Any]) -> Subscription:
    return Subscription(**row._asdict())


def _alert_thread(row: Row[Any]) -> AlertThread:
    values = row._asdict()
    values["state"] = AlertState(values["state"])
    values["versions"] = tuple(values["versions"])
    return AlertThread(**values)


def _alert_thread_values(thread: AlertThread) -> dict[str, Any]:
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
    }


def _digest_run(row: Row[Any]) -> DigestRun:
    values = row._asdict()
    del values["id"]
    return DigestRun(**values)


def _leasing(worker: str, now: datetime, lease_seconds: float, *, due_only: bool) -> Update:
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
    return (
        update(subscriptions)
        .where(*conditions)
        .values(lease_owner=worker, lease_until=now + timedelta(seconds=lease_seconds))
    )


def _ending(worker: str) -> Update:
    """The UPDATE that ends `worker`'s lease (params `sid`, `next_run`, `ok`); a worker that
    no longer holds the lease changes nothing."""
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


def _run_row(run: DigestRun) -> dict[str, Any]:
    return {
        "subscription_id": run.subscription_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "outcome": run.outcome,
        "posted": run.posted,
        "detail": run.detail,
    }


def _create_engine(url: str) -> AsyncEngine:
    scheme, separator, rest = url.partition("://")
    backend, _, driver = scheme.partition("+")
    if separator and backend in {"postgresql", "postgres"} and driver in {"", "asyncpg"}:
        # asyncpg parses the URL itself (libpq's syntax and options); SQLAlchemy only needs
        # to know the dialect.
        dsn = f"postgresql://{rest}"
        return create_async_engine(
            "postgresql+asyncpg://",
            async_creator=partial(asyncpg.connect, dsn),
            pool_pre_ping=True,  # a server restart must not break the next run
        )
    if separator and backend == "sqlite" and driver in {"", "aiosqlite"}:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise InvalidDatabaseUrl(f"not a database URL: {_USAGE}") from None
        database = parsed.database or ""
        if database in {"", ":memory:"} or parsed.query.get("mode") == "memory":
            raise InvalidDatabaseUrl(
                "an in-memory SQLite database cannot be shared between processes or survive a"
                " restart: use a file, sqlite:///path/to/file.db"
            )
        engine = create_async_engine(parsed.set(drivername="sqlite+aiosqlite"))
        event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
        return engine
    raise InvalidDatabaseUrl(f"unsupported database URL scheme {scheme!r}: {_USAGE}")


async def _probe_sqlite_file(url: URL) -> None:
    """Raise `StoreUnavailable` if SQLite cannot open (or create) the database file.

    Tried with the standard library first because aiosqlite, when its first connection fails,
    leaves a worker thread that later reports into the closed event loop (a stray traceback).
    """

    def probe() -> None:
        sqlite3.connect(url.database or "", uri=url.query.get("uri") == "true").close()

    try:
        await asyncio.to_thread(probe)
    except sqlite3.Error as error:
        raise StoreUnavailable(
            _one_line(f"cannot open the store: {error}: {url.database}")
        ) from error


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # The busy timeout first: switching to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # WAL: readers never block the writer nor the writer them; kept in the file.
        cursor.execute("PRAGMA journal_mode = WAL")
        # Off by default in SQLite; the cascades from subscriptions rely on it.
        cursor.execute("PRAGMA foreign_keys = ON")
        # In WAL mode NORMAL cannot corrupt the file; it skips an fsync per commit, which the
        # many small transactions of a digest run would otherwise each wait for. A power cut
        # may lose the last commits: at worst an alert of that moment is posted again.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _upgrade_to_head(connection: Connection) -> None:
    """Run the Alembic revisions up to head, one process at a time."""
    if connection.dialect.name == "sqlite":
        # Take the write lock before Alembic reads the version, so a second process waits
        # (busy timeout) and then finds the schema current instead of creating it again.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@asynccontextmanager
async def _translated_errors() -> AsyncIterator[None]:
    """Turn "the database did not answer" into `StoreUnavailable`; let bugs through."""
    try:
        yield
    except (OperationalError, InterfaceError, PoolTimeout) as error:
        cause = error.orig if isinstance(error, DBAPIError) else error
        raise StoreUnavailable(_one_line(f"database unavailable: {cause}")) from error
    except OSError as error:  # no connection at all (refused, unreachable, DNS)
        raise StoreUnavailable(_one_line(f"database unavailable: {error}")) from error
    except StatementError as error:
        # A value the column type refused (a naive datetime): the caller's ValueError, as is.
        if not isinstance(error, DBAPIError) and isinstance(error.orig, ValueError):
            raise error.orig from None
        raise


def _one_line(message: str) -> str:
    return " ".join(message.split())
