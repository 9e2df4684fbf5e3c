"""Alembic's environment: runs the revisions on the connection `Database.open` hands over.

The store upgrades itself when it opens (with the lock that keeps two processes from migrating at
once), so there is no engine to build here: the caller puts a synchronous `Connection` in
`config.attributes["connection"]` (inside `AsyncConnection.run_sync`).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from bot.store.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "the store's migrations run through Database.open (or with a Connection in"
        ' config.attributes["connection"])'
    )
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
