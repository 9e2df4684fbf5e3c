"""The machine's PostgreSQL for tests (`TEST_DATABASE_URL`): statements, empty schemas and
databases made and dropped per test. Without the variable, PostgreSQL tests are skipped."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL", "")
NO_POSTGRES = "TEST_DATABASE_URL not set: PostgreSQL store tests skipped"


async def execute(statement: str, url: str = POSTGRES_URL) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def new_database(prefix: str) -> AsyncIterator[tuple[str, str]]:
    """A new PostgreSQL database (its name and URL), dropped afterwards even if in use."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    await execute(f"CREATE DATABASE {name}")
    try:
        yield name, POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        await execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        await execute(f"DROP DATABASE {name} WITH (FORCE)")
