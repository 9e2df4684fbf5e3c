"""`Store`: the one way into the bot's persistent state, the same code on SQLite and PostgreSQL.

It composes the query modules over one `Database`; each use case names only the methods it
needs (its own `Protocol`), so this class is the sum of those ports.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from bot.store.alert_threads import AlertThreadQueries
from bot.store.engine import Database
from bot.store.intents import IntentQueries
from bot.store.subscriptions import SubscriptionQueries


class Store(SubscriptionQueries, AlertThreadQueries, IntentQueries):
    """Open with `await Store.open(url)`, end with `await close()` (or `async with`)."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.database = database

    @classmethod
    async def open(cls, url: str) -> Self:
        """The store of `url`, its schema upgraded (see `Database.open` for the URLs)."""
        return cls(await Database.open(url))

    @classmethod
    def connect_later(cls, url: str) -> Self:
        """The store of `url`, connected and migrated at its first use (or
        `database.migrate()`); raises `InvalidDatabaseUrl` at once for a URL it cannot use."""
        return cls(Database.connect_later(url))

    async def close(self) -> None:
        await self.database.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()
