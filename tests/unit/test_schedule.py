"""Next runs of subscriptions, across weekends and daylight-saving changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.schedule import Daily, Every, next_run, schedule_text

BERLIN = ZoneInfo("Europe/Berlin")
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def test_every_runs_one_interval_later() -> None:
    start = datetime(2026, 3, 29, 0, 50, tzinfo=UTC)
    assert next_run(Every(900), "Europe/Berlin", start) == start + timedelta(minutes=15)


def test_daily_stays_at_nine_local_across_both_dst_changes() -> None:
    runs = []
    at = berlin(2026, 3, 27, 12, 0)
    for _ in range(220):  # through the end of March and the end of October
        at = next_run(Daily(9, 0), "Europe/Berlin", at)
        runs.append(at)
    local = {run.astimezone(BERLIN).time().isoformat() for run in runs}
    assert local == {"09:00:00"}
    utc_hours = {run.hour for run in runs}
    assert utc_hours == {7, 8}  # CEST and CET
    assert all(b - a in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25))
               for a, b in itertools.pairwise(runs))  # fmt: skip


def test_weekdays_skip_the_weekend() -> None:
    friday_evening = berlin(2026, 11, 27, 18, 0)
    monday = next_run(Daily(9, 0, weekdays_only=True), "Europe/Berlin", friday_evening)
    assert monday.astimezone(BERLIN) == berlin(2026, 11, 30, 9, 0)


def test_a_time_skipped_by_spring_forward_runs_after_the_jump() -> None:
    run = next_run(Daily(2, 30), "Europe/Berlin", berlin(2026, 3, 28, 12, 0))
    assert run == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert run.astimezone(BERLIN).hour == 3


def test_a_time_repeated_by_fall_back_runs_once() -> None:
    first = next_run(Daily(2, 30), "Europe/Berlin", berlin(2026, 10, 24, 12, 0))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, first occurrence
    second = next_run(Daily(2, 30), "Europe/Berlin", first)
    assert second == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)  # next day, CET


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run(Every(60), "UTC", datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("schedule", "text"),
    [(Every(900), "every:15m"), (Every(7200), "every:2h"), (Every(86400), "every:1d"),
     (Every(604800), "every:1w"), (Daily(9, 0), "daily:09:00"),
     (Daily(7, 5, weekdays_only=True), "weekdays:07:05")],
)  # fmt: skip
def test_schedule_text(schedule: Every | Daily, text: str) -> None:
    assert schedule_text(schedule) == text


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1),
                 timezones=st.just(UTC)),
    st.integers(0, 23), st.integers(0, 59),
    st.sampled_from(ZONES),
    st.booleans(),
)  # fmt: skip
def test_next_daily_run_is_within_a_few_days_and_strictly_later(
    after: datetime, hour: int, minute: int, zone: str, weekdays_only: bool
) -> None:
    run = next_run(Daily(hour, minute, weekdays_only), zone, after)
    assert after < run <= after + timedelta(days=4)
    assert run.tzinfo is UTC
    local = run.astimezone(ZoneInfo(zone))
    if weekdays_only:
        assert local.weekday() < 5
    asked = datetime.combine(local.date(), time(hour, minute), tzinfo=ZoneInfo(zone))
    skipped_by_dst = asked.astimezone(UTC).astimezone(asked.tzinfo).time() != asked.time()
    if not skipped_by_dst:  # on the wall clock it is the asked time
        assert (local.hour, local.minute) == (hour, minute)
