"""When a subscription runs next: `every:DURATION`, `daily:HH:MM`, `weekdays:HH:MM` in a zone.

Pure: the caller passes the instant to count from. Times of day are wall-clock times in the
subscription's zone, so `daily:09:00` in Europe/Berlin stays 09:00 across daylight-saving
changes. A time that a spring-forward skips runs at the same distance after the jump (02:30
becomes 03:30); a time that a fall-back repeats runs once, at its first occurrence.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_SATURDAY = 5
_DURATION = re.compile(r"(\d{1,6})([mhdw])")
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60}


@dataclass(frozen=True, slots=True)
class Every:
    seconds: int


@dataclass(frozen=True, slots=True)
class Daily:
    hour: int
    minute: int
    weekdays_only: bool = False


Schedule = Every | Daily


def duration_seconds(text: str) -> int | None:
    """`30m`, `6h`, `2d`, `1w` (case-insensitive) in seconds; None for anything else,
    zero included."""
    match = _DURATION.fullmatch(text.lower())
    if match is None or int(match.group(1)) == 0:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    """`900` → `15m`, `7200` → `2h`: the largest whole unit, as users type durations."""
    for unit, size in _UNIT_SECONDS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


def schedule_text(schedule: Schedule) -> str:
    """The schedule as a user types it (and as the store keeps it)."""
    if isinstance(schedule, Every):
        return f"every:{format_duration(schedule.seconds)}"
    kind = "weekdays" if schedule.weekdays_only else "daily"
    return f"{kind}:{schedule.hour:02d}:{schedule.minute:02d}"


def next_run(schedule: Schedule, timezone: str, after: datetime) -> datetime:
    """The first run strictly after `after` (timezone-aware), as a UTC instant."""
    if after.tzinfo is None:
        raise ValueError("`after` must be timezone-aware")
    if isinstance(schedule, Every):
        return (after + timedelta(seconds=schedule.seconds)).astimezone(UTC)
    zone = ZoneInfo(timezone)
    day = after.astimezone(zone).date()
    wall = time(schedule.hour, schedule.minute)
    while True:
        if not (schedule.weekdays_only and day.weekday() >= _SATURDAY):
            # fold=0: an ambiguous wall time is its first occurrence; a skipped one maps past
            # the gap when converted to UTC.
            candidate = datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)
            if candidate > after:
                return candidate
        day += timedelta(days=1)


@functools.lru_cache(maxsize=256)
def parse_schedule(text: str) -> Schedule:
    """A schedule as `schedule_text` wrote it (the store keeps that text). Remembered: a
    digest run reads one per subscription, and a workspace uses few."""
    kind, _, value = text.partition(":")
    if kind == "every":
        seconds = duration_seconds(value)
        if seconds is None:
            raise ValueError(f"not a stored schedule: {text!r}")
        return Every(seconds)
    hour, _, minute = value.partition(":")
    return Daily(int(hour), int(minute), weekdays_only=kind == "weekdays")
