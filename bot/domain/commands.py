"""The grammar of `/algo-errors`: the command text becomes a typed command or a clear error.

Pure: no I/O, no clock. INTERFACE §3 is the contract.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import dataclass

from bot.domain.algorithm_ref import AlgorithmRef, InvalidAlgorithmRef, parse_algorithm_ref
from bot.domain.schedule import Daily, Every, Schedule, duration_seconds, format_duration

COMMAND = "/algo-errors"
API_WINDOW_SECONDS = 7 * 24 * 3600
"""The API returns the errors of the past 7 days (and at most 200 executions)."""
DEFAULT_EVERY_SECONDS = 15 * 60
MIN_EVERY_SECONDS = 60
MAX_TEXT = 2000
"""Characters of command text read at all; longer text is refused, not parsed."""
MAX_OPTION = 200
"""Characters of one option's value (`version:`, `type:`, `tz:` …)."""

_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_QUERY_OPTIONS = ("since", "version", "type")
_SUBSCRIBE_OPTIONS = ("every", "daily", "weekdays", "tz")


class CommandSyntaxError(ValueError):
    """The command text does not parse; the message says what was wrong."""


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Query:
    target: AlgorithmRef
    since_seconds: int | None = None
    version: str | None = None
    error_type: str | None = None

    @property
    def beyond_window(self) -> bool:
        """`since` reaches further back than the API keeps errors."""
        return self.since_seconds is not None and self.since_seconds > API_WINDOW_SECONDS

    def options_text(self) -> str:
        """The options as the user would type them, e.g. `since:2d type:ValueError`."""
        parts = []
        if self.since_seconds is not None:
            parts.append(f"since:{format_duration(self.since_seconds)}")
        if self.version is not None:
            parts.append(f"version:{self.version}")
        if self.error_type is not None:
            parts.append(f"type:{self.error_type}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Subscribe:
    target: AlgorithmRef
    schedule: Schedule = Every(DEFAULT_EVERY_SECONDS)  # noqa: RUF009  # frozen, safe to share
    timezone: str | None = None
    """None: the subscribing user's Slack time zone, else UTC."""


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    target: AlgorithmRef


@dataclass(frozen=True, slots=True)
class ListSubscriptions:
    pass


Command = Help | Query | Subscribe | Unsubscribe | ListSubscriptions


def parse_duration(text: str, option: str) -> int:
    seconds = duration_seconds(text)
    if seconds is None:
        raise CommandSyntaxError(
            f"`{option}:{text}` is not a duration: write a positive number and a unit,"
            " e.g. `30m`, `6h`, `2d` or `1w`"
        )
    return seconds


def parse_command(text: str) -> Command:
    """Parse what follows `/algo-errors`. Raises `CommandSyntaxError` saying what was wrong."""
    if len(text) > MAX_TEXT:
        raise CommandSyntaxError(
            f"the command is {len(text):,} characters long; at most {MAX_TEXT:,} are read"
        )
    tokens = [token.strip("`*") for token in text.split()]
    tokens = [token for token in tokens if token]
    if not tokens or tokens[0].lower() == "help":
        if len(tokens) > 1:
            raise CommandSyntaxError("`help` takes nothing after it")
        return Help()
    keyword = tokens[0].lower()
    if keyword == "list":
        if len(tokens) > 1:
            raise CommandSyntaxError("`list` takes nothing after it")
        return ListSubscriptions()
    if keyword in ("subscribe", "unsubscribe"):
        if len(tokens) < 2:
            raise CommandSyntaxError(f"`{keyword}` needs an algorithm: `owner/name` or `id:UUID`")
        target = _target(tokens[1])
        if keyword == "unsubscribe":
            if len(tokens) > 2:
                raise CommandSyntaxError("`unsubscribe` takes only the algorithm")
            return Unsubscribe(target)
        return _subscribe(target, _options(tokens[2:], _SUBSCRIBE_OPTIONS))
    target = _target(tokens[0])
    options = _options(tokens[1:], _QUERY_OPTIONS)
    since = options.get("since")
    return Query(
        target,
        since_seconds=parse_duration(since, "since") if since is not None else None,
        version=options.get("version"),
        error_type=options.get("type"),
    )


def _target(token: str) -> AlgorithmRef:
    if ":" in token and token[:3].lower() != "id:":
        raise CommandSyntaxError(
            f"`{token}` is not an algorithm: write `owner/name` or `id:UUID` first"
        )
    try:
        return parse_algorithm_ref(token)
    except InvalidAlgorithmRef as error:
        raise CommandSyntaxError(str(error)) from None


def _options(tokens: list[str], allowed: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for token in tokens:
        key, colon, value = token.partition(":")
        key = key.lower()
        if not colon:
            raise CommandSyntaxError(
                f"`{token}` is not an option: options look like "
                + ", ".join(f"`{name}:…`" for name in allowed)
            )
        if key not in allowed:
            raise CommandSyntaxError(
                f"`{key}:` is not an option here: use "
                + ", ".join(f"`{name}:…`" for name in allowed)
            )
        if not value:
            raise CommandSyntaxError(f"`{key}:` needs a value")
        if key in options:
            raise CommandSyntaxError(f"`{key}:` is given twice")
        if len(value) > MAX_OPTION:
            raise CommandSyntaxError(f"`{key}:` takes at most {MAX_OPTION} characters")
        options[key] = value
    return options


def _subscribe(target: AlgorithmRef, options: dict[str, str]) -> Subscribe:
    schedules = [key for key in ("every", "daily", "weekdays") if key in options]
    if len(schedules) > 1:
        raise CommandSyntaxError("give one schedule: `every:`, `daily:` or `weekdays:`")
    schedule: Schedule = Every(DEFAULT_EVERY_SECONDS)
    if "every" in options:
        seconds = parse_duration(options["every"], "every")
        if seconds < MIN_EVERY_SECONDS:
            raise CommandSyntaxError("`every:` is at least `1m`")
        schedule = Every(seconds)
    for key in ("daily", "weekdays"):
        if key in options:
            clock = _CLOCK.fullmatch(options[key])
            if clock is None:
                raise CommandSyntaxError(
                    f"`{key}:{options[key]}` is not a time of day: write `HH:MM`, e.g. `09:00`"
                )
            schedule = Daily(int(clock.group(1)), int(clock.group(2)), key == "weekdays")
    timezone = options.get("tz")
    if timezone is not None:
        timezone = _timezone(timezone)
    return Subscribe(target, schedule, timezone)


def _timezone(name: str) -> str:
    """A name of the time-zone database (`Europe/Berlin`), never a path or a file of it."""
    if name.upper() == "UTC":
        return "UTC"
    if name not in _zone_names():
        raise CommandSyntaxError(
            f"`tz:{name}` is not a time zone: write `Area/City`, e.g. `tz:Europe/Berlin`"
        )
    return name


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
