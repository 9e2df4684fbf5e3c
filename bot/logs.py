"""The process's logs on stderr: `text` (one line that reads well in a terminal) or `json` (one
object per line: `ts`, `level`, `logger`, `event`, then the context and the fields).

Every record, the bot's `logging.getLogger(__name__)` loggers', the libraries' and structlog's
alike, goes through one `structlog.stdlib.ProcessorFormatter`, so each carries the context bound
with `structlog.contextvars.bound_contextvars` (a command's user and channel, a digest run's id,
…) and the fields given as `extra=`. Libraries that log bodies or stored rows at DEBUG
(`_BODIES`) never log below INFO: a request body, a token, an algorithm's input or trace must
not reach the logs at any level.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["text", "json"]

_CHATTY = ("httpx", "httpcore", "alembic", "apscheduler", "uvicorn")
"""Libraries that log at INFO what the bot says better (every request, every check, every
scheduler tick, the server's start and stop): WARNING and above unless LOG_LEVEL is DEBUG."""
_BODIES = ("slack_sdk", "slack_bolt", "aiosqlite")
"""Libraries whose DEBUG lines carry bodies (slack_sdk: each request and answer; slack_bolt:
each answer, which may repeat what the user typed) or SQL parameters (aiosqlite): as
`_CHATTY`, and never DEBUG."""
_FIRST = ("ts", "level", "logger", "event")


def configure_logging(
    level: str, log_format: LogFormat = "text", *, quiet: bool = False, stream: TextIO | None = None
) -> None:
    """Send every log record to `stream` (stderr) in `log_format`, at `level` and above.

    `quiet`: only errors, whatever `level` says (`errors` prints one line when it fails)."""
    debug = level == "DEBUG"
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    output = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(output)
    handler.addFilter(_no_bodies)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _without_color_message],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_renderers(log_format, colors=_is_terminal(output)),
            ],
        )
    )
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    lowest = logging.ERROR if quiet else logging.getLevelNamesMapping()[level]
    root.setLevel(lowest)
    # A logger's own level decides for its records (the root's does not apply to them).
    chatty = max(lowest, logging.WARNING)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if debug else chatty)
    for name in _BODIES:
        logging.getLogger(name).setLevel(logging.INFO if debug else chatty)
    # A library's `warnings.warn` becomes a record (one line), not text of its own on stderr.
    logging.captureWarnings(True)


def _no_bodies(record: logging.LogRecord) -> bool:
    """The handler's own check that `_BODIES` log nothing below INFO: the loggers' levels are
    not enough, since Bolt gives its app's logger (which its Socket Mode client writes each
    envelope to) the root's level when it builds the app."""
    return record.levelno >= logging.INFO or not record.name.startswith(_BODIES)


def _renderers(log_format: LogFormat, *, colors: bool) -> list[Processor]:
    if log_format == "json":
        # A plain traceback string: structlog's dict tracebacks (and Rich's) show local
        # variables, which may hold a request's body or a token.
        return [
            structlog.processors.format_exc_info,
            _in_order,
            structlog.processors.JSONRenderer(),
        ]
    return [
        structlog.dev.ConsoleRenderer(
            colors=colors,
            timestamp_key="ts",
            exception_formatter=structlog.dev.plain_traceback,  # no locals (see above)
        )
    ]


def _without_color_message(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    """uvicorn gives each record a copy of its message with terminal colors (`extra=`)."""
    event.pop("color_message", None)
    return event


def _in_order(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    """`ts`, `level`, `logger`, `event` first, so a line reads left to right."""
    first = {key: event.pop(key) for key in _FIRST if key in event}
    return {**first, **event}


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
