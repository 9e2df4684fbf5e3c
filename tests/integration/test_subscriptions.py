"""Subscribe, unsubscribe and list against the real store (SQLite) and a fake cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.algorithmia.client import AlgorithmInfo
from bot.algorithmia.exceptions import NotFound
from bot.domain.algorithm_ref import AlgorithmId, AlgorithmRef, OwnerName
from bot.domain.commands import Subscribe
from bot.domain.schedule import Daily, Every
from bot.errors.records import ErrorRecord, RecordBatch
from bot.slack.blocks import subscriptions as subscription_blocks
from bot.usecases.results import FailureKind, LookupFailure
from bot.usecases.subscriptions import SubscribedAs, list_subscriptions, subscribe, unsubscribe
from tests.store_probe import ProbedStore as Store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # a Friday
ACME = OwnerName("acme", "image_tagger")


def _record(request_id: str) -> ErrorRecord:
    return ErrorRecord(created_at=1_764_000_000_000, request_id=request_id, error="error:\nx")


class FakeCluster:
    def __init__(self, records: list[ErrorRecord], *, known: bool = True) -> None:
        self.records, self.known = records, known

    async def list_errors(self, ref: AlgorithmRef) -> RecordBatch:
        if not self.known:
            raise NotFound("not found")
        return RecordBatch(tuple(self.records))

    async def get_algorithm(self, ref: OwnerName) -> AlgorithmInfo:
        if not self.known:
            raise NotFound("No such algorithm")
        return AlgorithmInfo(id="x", name=ref.name)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await Store.open(f"sqlite:///{tmp_path / 'bot.db'}") as opened:
        yield opened


async def test_subscribe_stores_and_marks_current_errors_as_seen(store: Store) -> None:
    cluster = FakeCluster([_record("req-1"), _record("req-2")])
    done = await subscribe(store, cluster, Subscribe(ACME), channel_id="C1", user_id="U1",
                           user_timezone="Europe/Berlin", now=NOW)  # fmt: skip
    assert (done.again, done.seen) == (False, 2)
    assert done.subscription.schedule == "every:15m"
    assert done.subscription.timezone == "Europe/Berlin"
    assert done.subscription.next_run_at == NOW + timedelta(minutes=15)
    sub_id = done.subscription.id
    assert await store.unreported(sub_id, ["req-1", "req-2", "req-3"]) == {"req-3"}


async def test_subscribing_again_changes_the_schedule_and_keeps_what_was_seen(
    store: Store,
) -> None:
    cluster = FakeCluster([_record("req-1")])
    first = await subscribe(store, cluster, Subscribe(ACME), channel_id="C1", user_id="U1",
                            user_timezone=None, now=NOW)  # fmt: skip
    cluster.records.append(_record("req-new"))  # arrived since: must still be reported
    again = await subscribe(
        store, cluster, Subscribe(ACME, Daily(9, 0, weekdays_only=True), "Europe/Berlin"),
        channel_id="C1", user_id="U2", user_timezone=None, now=NOW,
    )  # fmt: skip
    assert (again.again, again.seen) == (True, 0)
    assert again.subscription.id == first.subscription.id
    assert again.subscription.schedule == "weekdays:09:00"
    assert again.subscription.next_run_at == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert await store.unreported(first.subscription.id, ["req-1", "req-new"]) == {"req-new"}


async def test_time_zone_is_the_commands_then_the_users_then_utc(store: Store) -> None:
    cluster = FakeCluster([])

    async def zone_of(name: str, command_tz: str | None, user_tz: str | None) -> str:
        command = Subscribe(OwnerName("acme", name), Every(3600), command_tz)
        done = await subscribe(store, cluster, command, channel_id="C1", user_id="U1",
                               user_timezone=user_tz, now=NOW)  # fmt: skip
        return done.subscription.timezone

    assert await zone_of("a", "Asia/Kolkata", "Europe/Berlin") == "Asia/Kolkata"
    assert await zone_of("b", None, "Europe/Berlin") == "Europe/Berlin"
    assert await zone_of("c", None, None) == "UTC"


async def test_an_unknown_algorithm_stores_nothing(store: Store) -> None:
    with pytest.raises(LookupFailure) as failure:
        await subscribe(store, FakeCluster([], known=False), Subscribe(ACME), channel_id="C1",
                        user_id="U1", user_timezone=None, now=NOW)  # fmt: skip
    assert failure.value.kind is FailureKind.ALGORITHM_NOT_FOUND
    assert await list_subscriptions(store, "C1") == []


async def test_unsubscribe_and_list(store: Store) -> None:
    cluster = FakeCluster([])
    await subscribe(store, cluster, Subscribe(ACME), channel_id="C1", user_id="U1",
                    user_timezone=None, now=NOW)  # fmt: skip
    assert [s.algorithm for s in await list_subscriptions(store, "C1")] == ["acme/image_tagger"]
    assert await list_subscriptions(store, "C2") == []
    assert await unsubscribe(store, ACME, "C1") is True
    assert await unsubscribe(store, ACME, "C1") is False
    assert await list_subscriptions(store, "C1") == []


async def test_the_channel_hears_what_will_happen(store: Store) -> None:
    done = await subscribe(store, FakeCluster([_record("r")]), Subscribe(ACME),
                           channel_id="C1", user_id="U1", user_timezone=None, now=NOW)  # fmt: skip
    message = subscription_blocks.subscribed(
        done.subscription, again=done.again, seen=done.seen, by="U1"
    )
    text = str(message.blocks)
    assert "subscribed this channel to *acme/image_tagger*, `every:15m` (UTC)" in text
    assert "1 current error marked as seen" in text
    listed = subscription_blocks.subscription_list(await list_subscriptions(store, "C1"))
    assert "*acme/image_tagger*: `every:15m` (UTC) · next Fri 27 Nov 12:15 (<!date^" in str(
        listed.blocks
    )
    assert "no subscriptions" in subscription_blocks.subscription_list([]).text


async def test_list_shows_why_a_subscription_is_paused(store: Store) -> None:
    done = await subscribe(store, FakeCluster([]), Subscribe(ACME), channel_id="C1",
                           user_id="U1", user_timezone=None, now=NOW)  # fmt: skip
    await store.pause(done.subscription.id, "the channel is archived")
    listed = subscription_blocks.subscription_list(await list_subscriptions(store, "C1"))
    line = str(listed.blocks)
    assert "paused: the channel is archived" in line
    assert "next <!date^" not in line


async def test_one_id_in_another_case_is_the_same_subscription(store: Store) -> None:
    lower = "3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8"
    cluster = FakeCluster([_record("req-1")])
    await subscribe(store, cluster, Subscribe(AlgorithmId(lower)), channel_id="C1",
                    user_id="U1", user_timezone=None, now=NOW)  # fmt: skip
    with pytest.raises(SubscribedAs) as same:
        await subscribe(store, cluster, Subscribe(AlgorithmId(lower.upper())), channel_id="C1",
                        user_id="U1", user_timezone=None, now=NOW)  # fmt: skip
    assert same.value.existing.algorithm == f"id:{lower}"
    assert len(await list_subscriptions(store, "C1")) == 1
