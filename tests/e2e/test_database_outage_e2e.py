"""A database outage while serving (PostgreSQL, as replicas run): queries still answered,
commands that need storage told plainly, `/readyz` degraded, and all of it back without a
restart; a database recreated empty gets its tables again."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.testing.harness import RunningBot, running_bot
from tests.postgres import NO_POSTGRES, POSTGRES_URL, execute, new_database

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with new_database("algo_outage") as (name, _):
        yield name


async def _disconnect(name: str) -> None:
    """Close every connection to the database, the bot's pooled ones included."""
    await execute(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    )


async def _cut_off(name: str) -> None:
    await execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    await _disconnect(name)


async def _ready(bot: RunningBot) -> tuple[int, dict[str, object]]:
    response = await bot.http.get(f"{bot.url}/readyz")
    return response.status_code, response.json()


@pytest.fixture
async def bot(database: str) -> AsyncIterator[RunningBot]:
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}"
    async with running_bot(database_url=url) as running:
        yield running


async def test_an_outage_degrades_the_bot_and_it_recovers_without_a_restart(
    bot: RunningBot, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert await _ready(bot) == (200, {"status": "ready"})
    await bot.command("subscribe acme/image_tagger")
    await bot.slack.wait_for(lambda s: len(s.top_level("C_GENERAL")) == 1)

    await _cut_off(database)
    assert await _ready(bot) == (200, {"status": "degraded", "reasons": ["database"]})
    assert (await bot.http.get(f"{bot.url}/healthz")).status_code == 200
    assert (await bot.command("list", channel="C_GENERAL")).status_code == 200
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 1, timeout=10)
    assert "database does not answer" in bot.slack.ephemerals[0].text
    # A query needs no database: its answer is posted as ever.
    assert (await bot.command("acme/image_tagger")).status_code == 200
    await bot.slack.wait_for(lambda s: len(s.top_level("C_GENERAL")) == 2, timeout=10)
    report = await bot.digest()
    assert report.error is not None
    assert "DATABASE_URL" in report.error

    await execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
    assert await _ready(bot) == (200, {"status": "ready"})
    await bot.command("list", channel="C_GENERAL")
    await bot.slack.wait_for(lambda s: len(s.ephemerals) == 2, timeout=10)
    assert "acme/image_tagger" in str(bot.slack.ephemerals[1].blocks)
    assert not [r for r in caplog.records if r.exc_info]  # no traceback, at any level


async def test_a_database_recreated_empty_gets_its_tables_again(
    bot: RunningBot, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    await _disconnect(database)
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}"
    await execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public", url)
    with caplog.at_level(logging.INFO):
        assert await _ready(bot) == (200, {"status": "ready"})
    assert "built them again" in caplog.text
    await bot.command("subscribe acme/image_tagger")
    await bot.slack.wait_for(lambda s: len(s.top_level("C_GENERAL")) == 1, timeout=10)
    assert "subscribed this channel" in bot.slack.top_level("C_GENERAL")[0].text
    assert not [r for r in caplog.records if r.exc_info]
