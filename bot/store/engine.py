"""The database under the store: engine, connections, transactions and migrations.

`Database.open(url)` connects to SQLite (aiosqlite) or PostgreSQL (asyncpg) and upgrades the
schema (Alembic, `migrations/`); `Database.connect_later(url)` does that at its first use or
`migrate()`, for a process that starts while its database does not answer. The query modules
run their statements through `transaction()` and `reading()`, which turn "the database did
not answer" into `StoreUnavailable` and let bugs through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CursorResult, Table, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.config import DATABASE_DRIVERS, DATABASE_URL_FORMS
from bot.store.exceptions import (
    ClockSkewed,
    InvalidDatabaseUrl,
    SchemaMissing,
    StoreUnavailable,
)
from bot.store.schema import VERSION_TABLE

MIGRATIONS: Final = Path(__file__).parent / "migrations"

# How long a SQLite connection waits for another writer (another process included) before
# giving up with "database is locked". Writes here are single short statements.
SQLITE_BUSY_TIMEOUT_MS: Final = 5_000

# Any fixed key: PostgreSQL processes opening the store at once migrate one after the other.
_MIGRATION_LOCK_KEY: Final = 0x616C676F_6572  # "algoer" in ASCII

_USAGE = f"use {DATABASE_URL_FORMS}"

log = logging.getLogger(__name__)


MAX_CLOCK_SKEW_S: Final = 5.0
"""How far this host's clock may be off the database's (PostgreSQL, replicas on several
hosts) for a digest to run here. Leases are written and judged on each replica's own clock:
a replica whose clock runs ahead takes a lease still held, one behind writes leases already
run out, and an alert is posted twice. A run stops posting a quarter of a lease (11 s)
before its lease ends, which covers a smaller skew."""
CLOCK_CHECKED_EVERY_S: Final = 300.0
"""A clock found right is checked again after this long (a tick costs its one statement)."""


def wall_clock() -> datetime:
    """This host's time (a function of its own: tests set it off)."""
    return datetime.now(UTC)


FAILED_RECENTLY_S: Final = 0.5
"""How long a failed attempt to open the store answers for the calls queued behind it."""


class Database:
    """One engine and the rules for using it. `await Database.open(url)` connects and migrates
    at once; `Database.connect_later(url)` only checks the URL, and the schema is brought to
    the newest revision by `migrate()`, which the first transaction or read calls too."""

    def __init__(self, engine: AsyncEngine) -> None:
        """Wrap an engine; nothing is connected until `migrate()` or the first statement."""
        self._engine = engine
        dialect = engine.dialect.name
        if dialect not in {"sqlite", "postgresql"}:
            raise InvalidDatabaseUrl(f"the store does not support {dialect}: {_USAGE}")
        self.dialect = dialect
        # SQLite has one writer at a time; connections of one process that collide wait in
        # SQLite's busy handler, which sleeps up to 100 ms a try. Taking turns in-process
        # instead keeps the busy handler for other processes.
        self._turn = asyncio.Lock() if dialect == "sqlite" else contextlib.nullcontext()
        self._migrating = asyncio.Lock()
        self._migrated = False
        self._not_open: StoreUnavailable | None = None
        """Why the last `migrate()` failed, until one succeeds."""
        self._failed_at = 0.0
        self._clock_right_until = 0.0

    @classmethod
    def connect_later(cls, url: str) -> Database:
        """The database of `url` (see `open`), not connected yet: a process can start while
        its database does not answer. Raises `InvalidDatabaseUrl` for a URL it cannot use."""
        return cls(_create_engine(url))

    @classmethod
    async def open(cls, url: str) -> Database:
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
        database = cls.connect_later(url)
        try:
            await database.migrate()
        except BaseException:
            await database.close()
            raise
        return database

    @property
    def engine(self) -> AsyncEngine:
        """The engine itself, for instrumentation (a benchmark or test counting statements)."""
        return self._engine

    @property
    def migrated(self) -> bool:
        """Whether the schema is known to be at the newest revision (`migrate()` succeeded)."""
        return self._migrated

    async def migrate(self) -> None:
        """Upgrade the schema to the newest revision, once per process (a no-op afterwards);
        raises `StoreUnavailable` when the database cannot be reached or refuses."""
        if self._migrated:
            return
        async with self._migrating:
            if self._migrated:
                return
            failed = self._not_open
            if failed is not None and time.monotonic() - self._failed_at < FAILED_RECENTLY_S:
                # Those who queued behind an attempt that just failed hear it at once, rather
                # than each waiting for a connection of its own in turn.
                raise StoreUnavailable(str(failed))
            try:
                if self.dialect == "sqlite":
                    await _probe_sqlite_file(self._engine.url)
                async with _translated_errors(), self._engine.connect() as connection:
                    await connection.run_sync(_upgrade_to_head)
                    await connection.commit()
            except DBAPIError as error:
                # Refused at connect or at migrating (no such role or database, no right to
                # create tables).
                refused = StoreUnavailable(_one_line(f"cannot open the store: {error.orig}"))
                self._not_open, self._failed_at = refused, time.monotonic()
                raise refused from error
            except StoreUnavailable as error:
                self._not_open, self._failed_at = error, time.monotonic()
                raise
            self._migrated, self._not_open = True, None

    async def close(self) -> None:
        """Close every connection. The database cannot be used afterwards."""
        await self._engine.dispose()

    async def ping(self, timeout_s: float = 0.8) -> None:
        """Check that the database answers and holds the bot's tables; raises
        `StoreUnavailable` when it does not answer within `timeout_s`. A database that answers
        without the tables (recreated empty) gets them again, as at start. Before the first
        `migrate()` succeeded it only says why that failed: migrating is not a ping's job."""
        if not self._migrated:
            raise StoreUnavailable(str(self._not_open or "the store is not open yet"))
        try:
            async with asyncio.timeout(timeout_s), self.reading() as connection:
                await connection.execute(text("SELECT 1 FROM subscriptions LIMIT 1"))
        except TimeoutError:
            raise StoreUnavailable(
                f"database unavailable: no answer within {timeout_s:g} s"
            ) from None
        except SchemaMissing:
            async with _translated_errors(), self._engine.connect() as connection:
                await connection.run_sync(_upgrade_to_head)
                await connection.commit()
            log.warning("the database had none of the bot's tables (recreated?): built them again")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: on SQLite, the process's writers take turns."""
        await self.migrate()
        async with self._turn, _translated_errors(), self._engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction: in WAL mode readers need no turn."""
        await self.migrate()
        async with _translated_errors(), self._engine.begin() as connection:
            yield connection

    async def check_clock(self) -> None:
        """On PostgreSQL, raise `ClockSkewed` when this host's clock is more than
        `MAX_CLOCK_SKEW_S` off the database's (see there); a clock found right is trusted for
        `CLOCK_CHECKED_EVERY_S`. SQLite's processes share one host, and so one clock."""
        if self.dialect != "postgresql" or time.monotonic() < self._clock_right_until:
            return
        async with self.reading() as connection:  # connected first: only the statement timed
            before = wall_clock()
            theirs = (await connection.execute(select(func.clock_timestamp()))).scalar_one()
            after = wall_clock()
        if after - before > timedelta(seconds=1):  # too slow to tell: the next claim checks
            return
        skew = (before + (after - before) / 2 - theirs).total_seconds()
        if abs(skew) > MAX_CLOCK_SKEW_S:
            way = "ahead of" if skew > 0 else "behind"
            raise ClockSkewed(
                f"this host's clock is {abs(skew):.0f} s {way} the database's (more than"
                f" {MAX_CLOCK_SKEW_S:g} s: replicas would judge leases apart and post an alert"
                " twice); no digest runs here until it is set right (NTP)"
            )
        self._clock_right_until = time.monotonic() + CLOCK_CHECKED_EVERY_S

    async def changed(self, statement: Any, parameters: Any = None) -> int:
        """Run one write statement in its own transaction; the number of rows it changed."""
        async with self.transaction() as connection:
            result: CursorResult[Any] = await connection.execute(statement, parameters)
        return result.rowcount

    def insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """An INSERT with this backend's `ON CONFLICT` clauses."""
        return sqlite.insert(table) if self.dialect == "sqlite" else postgresql.insert(table)


CONNECT_TIMEOUT_S = 10.0
"""How long connecting to PostgreSQL may take (asyncpg's own default is 60 s): a database that
takes connections and never answers (a dead host behind a proxy, a firewall dropping packets)
holds a start, a command that needs the store and a readiness probe no longer than this."""


def _create_engine(url: str) -> AsyncEngine:
    scheme, separator, rest = url.partition("://")
    backend, _, driver = scheme.partition("+")
    if not separator or driver not in DATABASE_DRIVERS.get(backend, ()):
        raise InvalidDatabaseUrl(f"unsupported database URL scheme {scheme!r}: {_USAGE}")
    if backend != "sqlite":  # PostgreSQL
        # asyncpg parses the URL itself (libpq's syntax and options); SQLAlchemy only needs
        # to know the dialect.
        dsn = f"postgresql://{rest}"
        _check_postgresql_url(dsn)
        return create_async_engine(
            "postgresql+asyncpg://",
            async_creator=partial(asyncpg.connect, dsn, timeout=CONNECT_TIMEOUT_S),
            pool_pre_ping=True,  # a server restart must not break the next run
        )
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


_SSL_MODES: Final = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
_SESSION_ATTRS: Final = {"any", "primary", "standby", "prefer-standby", "read-write", "read-only"}


def _check_postgresql_url(dsn: str) -> None:
    """What asyncpg would refuse only when it connects (a port that is no number, a bracket
    left open, an unknown `sslmode`): refused now, so a typo is not taken for an outage."""
    try:
        parts = urlsplit(dsn)
        hosts = parts.netloc.rpartition("@")[2]
        if "," not in hosts:
            parts.port  # noqa: B018  # parsing the port is the check
    except ValueError as error:
        # urlsplit's message quotes the URL, whose password (`#`, `?` or `/` not encoded cut
        # it short) would reach the logs: only what is wrong is said.
        port = "port" in str(error).lower()
        raise _unreadable("its port is not a number" if port else "it cannot be read") from None
    # libpq's host1:port1,host2:port2: each port a number (asyncpg refuses one that is not
    # only when it connects, and its message quotes the URL).
    ports = (host.rpartition("]")[2].partition(":")[2] for host in hosts.split(","))
    if not all(port.isascii() and port.isdecimal() for port in ports if port):
        raise _unreadable("its port is not a number")
    query = parse_qs(parts.query)
    for mode in query.get("sslmode", []):
        if mode not in _SSL_MODES:
            raise InvalidDatabaseUrl(
                f"sslmode={mode} is none of {', '.join(sorted(_SSL_MODES))}: {_USAGE}"
            )
    for attrs in query.get("target_session_attrs", []):
        if attrs not in _SESSION_ATTRS:
            raise InvalidDatabaseUrl(
                f"target_session_attrs={attrs} is none of {', '.join(sorted(_SESSION_ATTRS))}"
            )
    for name in ("sslrootcert", "sslcert", "sslkey", "sslcrl"):
        for path in query.get(name, []):
            if path != "system" and not Path(path).expanduser().is_file():  # libpq's `system`
                raise InvalidDatabaseUrl(f"{name}={path}: no such file")


def _unreadable(what: str) -> InvalidDatabaseUrl:
    return InvalidDatabaseUrl(
        f"not a database URL: {what} (a `#`, `?`, `/` or `@` in the password must be"
        f" percent-encoded, `%23` for `#`): {_USAGE}"
    )


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


SQLITE_SWITCH_INTERVAL_S: Final = 0.0005
"""After how long the event loop's thread is asked to hand the GIL to SQLite's thread."""


def share_the_gil_with_sqlite(database: Database) -> None:
    """For a process whose store is SQLite (its composition root calls this once): statements
    run in aiosqlite's thread, and `sqlite3` lets go of the GIL at every row it steps to, then
    waits for it back; while the event loop is busy (a digest run reading answers), the loop's
    thread is asked to hand it over only after Python's switch interval, 5 ms by default, so
    one read of 500 rows could take seconds, the answers waiting for it piled up, and the
    run's memory with them. With this interval it is asked after 0.5 ms (and hands it over at
    its next bytecode boundary). A shorter interval changes nothing while no other thread
    waits for the GIL; PostgreSQL (asyncpg, in the event loop) needs none of it. Never
    lengthened. Figures: bench/README.md, the eighth session."""
    if database.dialect == "sqlite" and sys.getswitchinterval() > SQLITE_SWITCH_INTERVAL_S:
        sys.setswitchinterval(SQLITE_SWITCH_INTERVAL_S)


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
    found = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE}
    ).get_current_revision()
    scripts = ScriptDirectory.from_config(config)
    if found is not None and found not in {script.revision for script in scripts.walk_revisions()}:
        # A newer release migrated it (a rolling upgrade, a rollback, an old CronJob): each
        # release's schema keeps the previous release working, so this one runs as it is.
        log.warning(
            "the database schema is at revision %s, newer than this release knows (up to"
            " %s): a newer release migrated it; running on it unchanged",
            found, scripts.get_current_head(),
        )  # fmt: skip
        return
    command.upgrade(config, "head")


@asynccontextmanager
async def _translated_errors() -> AsyncIterator[None]:
    """Turn "the database did not answer" into `StoreUnavailable`; let bugs through."""
    try:
        yield
    except (OperationalError, InterfaceError, PoolTimeout, ProgrammingError) as error:
        cause = error.orig if isinstance(error, DBAPIError) else error
        if _is_missing_table(error):
            raise SchemaMissing(_one_line(f"the bot's tables are missing: {cause}")) from error
        if isinstance(error, ProgrammingError):  # a bug in a statement: let it through
            raise
        raise StoreUnavailable(_one_line(f"database unavailable: {cause}")) from error
    except DBAPIError as error:
        # A driver error SQLAlchemy has no class for (asyncpg: "database … is not currently
        # accepting connections"), or a connection that broke: the database, not the
        # statement. Constraint and data errors have classes of their own and go through.
        if type(error) is not DBAPIError and not error.connection_invalidated:
            raise
        raise StoreUnavailable(_one_line(f"database unavailable: {error.orig}")) from error
    except TimeoutError as error:  # no answer while connecting (an OSError without words)
        said = f"database unavailable: no answer within {CONNECT_TIMEOUT_S:g} s"
        raise StoreUnavailable(said) from error
    except OSError as error:  # no connection at all (refused, unreachable, DNS)
        raise StoreUnavailable(_one_line(f"database unavailable: {error}")) from error
    except StatementError as error:
        # A value the column type refused (a naive datetime): the caller's ValueError, as is.
        if not isinstance(error, DBAPIError) and isinstance(error.orig, ValueError):
            raise error.orig from None
        raise


def _is_missing_table(error: DBAPIError | PoolTimeout) -> bool:
    """SQLite's "no such table", PostgreSQL's undefined table (SQLSTATE 42P01)."""
    orig = getattr(error, "orig", None)
    return getattr(orig, "sqlstate", None) == "42P01" or "no such table" in str(orig)


def _one_line(message: str) -> str:
    return " ".join(message.split())
