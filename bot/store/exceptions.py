"""The exceptions the store raises.

StoreError
├── InvalidDatabaseUrl   DATABASE_URL names no backend the store supports (also a ValueError)
└── StoreUnavailable     the database could not be reached, opened or stayed locked
    └── SchemaMissing    the database answers but has none of the bot's tables (recreated empty)
"""

from __future__ import annotations


class StoreError(Exception):
    """The store could not do what was asked; `str(error)` is one line for people and logs.

    It never contains a database password.
    """


class InvalidDatabaseUrl(StoreError, ValueError):
    """The URL is not `sqlite:///path.db` or `postgresql://…` (or is an in-memory SQLite)."""


class StoreUnavailable(StoreError):
    """The database did not answer: refused, unreachable, unopenable, or locked too long."""


class SchemaMissing(StoreUnavailable):
    """The database answers but the bot's tables are gone (a database recreated empty while
    the bot ran): `Database.ping` builds them again."""


class ClockSkewed(StoreUnavailable):
    """This host's clock is too far off the database's for leases to be judged alike by every
    replica: no digest runs here until it is set right."""
