"""The logs an operator reads: one JSON object per line (`LOG_FORMAT=json`) or one readable line
(`text`), the bot's records and the libraries' alike, with the context bound where they happen;
library chatter only at DEBUG, and nothing that carries bodies at any level."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from structlog.contextvars import bound_contextvars

from bot.digest.ticker import DigestTicker
from bot.logs import configure_logging

_LIBRARIES = ("httpx", "httpcore", "alembic", "apscheduler", "slack_sdk", "slack_bolt", "aiosqlite",
              "slack_bolt.AsyncApp")  # fmt: skip


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Where `configure_logging` writes; the logging setup of the test run is put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in _LIBRARIES}
    try:
        yield io.StringIO()
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)
        logging.captureWarnings(False)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = stream.getvalue().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(line, dict) for line in parsed)
    return parsed


def _is_utc_rfc3339(ts: str) -> bool:
    assert ts.endswith(("Z", "+00:00")), ts
    when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    assert when.utcoffset() == timedelta(0)
    return abs(datetime.now(UTC) - when) < timedelta(minutes=1)


def test_json_lines_carry_ts_level_logger_event_and_the_bound_context(
    stream: io.StringIO,
) -> None:
    configure_logging("INFO", "json", stream=stream)
    with bound_contextvars(command="query", user="U_ALICE", channel="C_GENERAL"):
        logging.getLogger("bot.slack.listeners.commands").info(
            "command handled", extra={"outcome": "ok", "duration_s": 0.25}
        )
        structlog.stdlib.get_logger("bot.usecases.digest").info("digest run", posted=3)
    logging.getLogger("bot.wiring.run").warning("digest failed: %s", "acme/x in C1: down")

    command, digest, failed = _json_lines(stream)
    for line in (command, digest, failed):
        assert list(line)[:4] == ["ts", "level", "logger", "event"]  # read left to right
        assert _is_utc_rfc3339(line["ts"])
    assert command["level"] == "info"
    assert command["logger"] == "bot.slack.listeners.commands"
    assert command["event"] == "command handled"
    assert command["command"] == "query"
    assert (command["user"], command["channel"]) == ("U_ALICE", "C_GENERAL")
    assert (command["outcome"], command["duration_s"]) == ("ok", 0.25)
    # A structlog logger's line has the same shape and the same context.
    assert (digest["logger"], digest["event"], digest["posted"]) == (
        "bot.usecases.digest", "digest run", 3,
    )  # fmt: skip
    assert (digest["user"], digest["command"]) == ("U_ALICE", "query")
    # Outside the block, the context is gone; a stdlib message's arguments are filled in.
    assert failed["level"] == "warning"
    assert failed["event"] == "digest failed: acme/x in C1: down"
    assert "user" not in failed
    assert "command" not in failed


def test_a_library_record_and_a_traceback_stay_one_json_line(stream: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=stream)
    with bound_contextvars(run="r1"):
        logging.getLogger("uvicorn.error").warning(
            "Invalid HTTP request received.", extra={"color_message": "\x1b[1m"}
        )
        try:
            raise RuntimeError("a bug in the bot")
        except RuntimeError:
            logging.getLogger("bot.slack.app").exception("handling /algo-errors failed")

    started, failed = _json_lines(stream)
    assert started["logger"] == "uvicorn.error"
    assert started["run"] == "r1"
    assert "color_message" not in started
    assert failed["level"] == "error"
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: a bug in the bot" in failed["exception"]


def _raise_with_a_secret_local() -> None:
    signing_secret = "local-secret-4c7d"  # noqa: F841  (a local a rich traceback would show)
    raise RuntimeError("a bug in the bot")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_traceback_shows_no_local_variables(stream: io.StringIO, log_format: Any) -> None:
    configure_logging("INFO", log_format, stream=stream)
    try:
        _raise_with_a_secret_local()
    except RuntimeError:
        logging.getLogger("bot").exception("handling failed")

    assert "a bug in the bot" in stream.getvalue()
    assert "local-secret-4c7d" not in stream.getvalue()


def test_text_is_one_readable_line_per_record(stream: io.StringIO) -> None:
    configure_logging("INFO", "text", stream=stream)
    with bound_contextvars(action="group_resolve", user="U_BOB"):
        logging.getLogger("bot.slack.listeners.actions").info(
            "interaction handled", extra={"outcome": "refused"}
        )

    (line,) = stream.getvalue().splitlines()
    assert "\x1b[" not in line  # no terminal colors when stderr is not a terminal
    assert "Z " in line[:40]  # the time first, in UTC
    for part in ("info", "interaction handled", "[bot.slack.listeners.actions]",
                 "action=group_resolve", "user=U_BOB", "outcome=refused"):  # fmt: skip
        assert part in line


def _log_from_libraries() -> None:
    logging.getLogger("apscheduler.executors.default").info('Running job "DigestTicker._guarded"')
    logging.getLogger("httpx").info("HTTP Request: GET http://cluster/v1/… 200 OK")
    logging.getLogger("slack_sdk.web.async_base_client").debug("Sending a request - json: {…}")
    logging.getLogger("slack_bolt.AsyncApp").debug('Responding with status: 200 body: "{…}"')
    logging.getLogger("aiosqlite").debug("executing functools.partial(…, 'INSERT …', (…))")
    logging.getLogger("bot.digest.ticker").debug("digest tick")
    logging.getLogger("uvicorn.error").info("Started server process [7]")
    logging.getLogger("bot.wiring.run").info("serving on 127.0.0.1:3000")
    logging.getLogger("apscheduler.scheduler").warning("Run time of job … was missed")


def _loggers(stream: io.StringIO) -> list[str]:
    return [line["logger"] for line in _json_lines(stream)]


def test_library_chatter_shows_only_at_debug_and_bodies_never(stream: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=stream)
    _log_from_libraries()
    assert _loggers(stream) == ["bot.wiring.run", "apscheduler.scheduler"]

    stream.seek(0)
    stream.truncate()
    configure_logging("DEBUG", "json", stream=stream)
    # Bolt gives its app's logger the root's level when it builds the app.
    logging.getLogger("slack_bolt.AsyncApp").setLevel(logging.DEBUG)
    _log_from_libraries()
    assert _loggers(stream) == [
        "apscheduler.executors.default", "httpx", "bot.digest.ticker", "uvicorn.error",
        "bot.wiring.run", "apscheduler.scheduler",
    ]  # fmt: skip


def test_quiet_logs_only_errors(stream: io.StringIO) -> None:
    configure_logging("INFO", "text", quiet=True, stream=stream)
    logging.getLogger("bot.algorithmia.client").warning("GET /v1/… failed; retry 1 of 2")
    logging.getLogger("httpx").warning("a warning of a library")
    logging.getLogger("bot").error("the one line that matters")

    assert len(stream.getvalue().splitlines()) == 1
    assert "the one line that matters" in stream.getvalue()


async def test_a_run_longer_than_the_interval_skips_ticks_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Slack's pace makes a run outlast `DIGEST_TICK_SECONDS`: the ticks meanwhile are
    skipped (at DEBUG), never run beside it, and no WARNING says so at each tick."""
    running, most, runs = 0, 0, 0
    release = asyncio.Event()

    async def tick() -> None:
        nonlocal running, most, runs
        running, runs = running + 1, runs + 1
        most = max(most, running)
        try:
            await release.wait()
        finally:
            running -= 1

    skips: list[logging.LogRecord] = []
    two_skipped = asyncio.Event()

    class Skips(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "skipped" in record.getMessage():
                skips.append(record)
                if len(skips) == 2:
                    two_skipped.set()

    caplog.set_level(logging.DEBUG)
    logging.getLogger("bot.digest.ticker").addHandler(handler := Skips())
    ticker = DigestTicker(tick, every_s=1)
    try:
        async with asyncio.timeout(20):
            await two_skipped.wait()  # two more ticks came while the first run goes
        assert (runs, most) == (1, 1)
        release.set()
        await asyncio.sleep(0.1)
    finally:
        release.set()
        await ticker.stop(grace_s=1)
        logging.getLogger("bot.digest.ticker").removeHandler(handler)
    assert most == 1
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == []
