"""Upgrading the grouping (fingerprint version 1 → 2) on a channel that already has alerts.

What an operator cares about: an upgrade never re-alerts a bug the channel already knows, a bug
the old grouping had merged with another is split off once (and says so once), two runners
never both adopt one thread, and a database of the previous release migrates with its rows
intact. On SQLite always and on PostgreSQL when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from bot.domain.alerts import ALERT_STATE, AlertAction, AlertRef, AlertState, AlertThread
from bot.errors.grouping import ErrorGroup, fingerprint, legacy_fingerprint
from bot.errors.records import ErrorRecord
from bot.errors.traces import parse_error
from bot.store.engine import MIGRATIONS
from bot.store.schema import VERSION_TABLE, metadata
from bot.usecases.alerts import change_alert
from bot.usecases.digest import run_digests
from tests.integration.test_digest_runner import FakeCluster, FlakyNotifier, RecordingNotifier
from tests.integration.test_store import raw_engine
from tests.store_probe import ProbedStore as Store
from tests.unit.test_grouping_raise_sites import SKLEARN_FEATURE_COUNT, SKLEARN_NAN

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CHANNEL = "C1"
ALGORITHM = "acme/image_tagger"
OLD_PARENT_TS = "1764000000.000100"
ERROR_TYPE = "AlgorithmError"


def _v1(error: str) -> str:
    return legacy_fingerprint(parse_error(error, ERROR_TYPE), ERROR_TYPE)


def _v2(error: str) -> str:
    return fingerprint(parse_error(error, ERROR_TYPE), ERROR_TYPE)


OLD_KEY = _v1(SKLEARN_FEATURE_COUNT)
FEATURES = _v2(SKLEARN_FEATURE_COUNT)
NAN = _v2(SKLEARN_NAN)


def test_the_two_bugs_share_one_version_1_key() -> None:
    assert _v1(SKLEARN_NAN) == OLD_KEY
    assert FEATURES != NAN
    assert ":" not in OLD_KEY  # what the previous release stored: 12 bare hex digits
    assert FEATURES.startswith("2:")


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with await Store.open(database_url) as opened:
        yield opened


class KeepingNotifier(RecordingNotifier):
    """Also keeps the whole thread each first reply was told it was split from."""

    def __init__(self) -> None:
        super().__init__()
        self.split_from: list[AlertThread] = []

    async def first_reply(
        self, channel_id: str, parent_ts: str, group: ErrorGroup,
        split_from: AlertThread | None, intent_id: str, *, again: bool = False,
    ) -> bool:  # fmt: skip
        await super().first_reply(channel_id, parent_ts, group, split_from, intent_id, again=again)
        if split_from is not None:
            self.split_from.append(split_from)


class Cluster(FakeCluster):
    """The fake cluster, with records of a bug added at a given age before a run."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = count(1)

    def add(self, error: str, at: datetime, *, minutes_before: int = 0, n: int = 1) -> list[str]:
        created = int((at - timedelta(minutes=minutes_before)).timestamp() * 1000)
        ids = [f"req-{next(self._ids)}" for _ in range(n)]
        self.records.setdefault(ALGORITHM, []).extend(
            ErrorRecord(created_at=created, request_id=i, error=error, algoversion="2.0.0")
            for i in ids
        )
        return ids


def old_thread(state: AlertState = AlertState.OPEN, **changes: Any) -> AlertThread:
    """An alert thread as the previous release stored it: keyed by the version-1 key."""
    thread = AlertThread(
        channel_id=CHANNEL,
        algorithm=ALGORITHM,
        fingerprint=OLD_KEY,
        parent_ts=OLD_PARENT_TS,
        state=state,
        muted_until=None,
        state_changed_by="U0BOB" if state is not AlertState.OPEN else None,
        state_changed_at=T0 - timedelta(days=2) if state is not AlertState.OPEN else None,
        count=5,
        versions=("1.0.0",),
        first_seen_ms=int((T0 - timedelta(days=5)).timestamp() * 1000),
        last_seen_ms=int((T0 - timedelta(days=3)).timestamp() * 1000),
        error_type=ERROR_TYPE,
        headline="ValueError: X has 512 features per sample; expecting 2048",
    )
    return replace(thread, **changes)


async def _known_channel(store: Store, thread: AlertThread) -> int:
    """A subscription and its alert thread of the previous release; the subscription's id."""
    subscription = await store.upsert_subscription(
        CHANNEL, ALGORITHM, "every:15m", "UTC", "U1", T0, T0 - timedelta(days=5)
    )
    assert await store.create_alert_thread(thread)
    return subscription.id


async def _run(store: Store, cluster: FakeCluster, notifier: RecordingNotifier, at: datetime,
               worker: str = "w1") -> None:  # fmt: skip
    report = await run_digests(store, cluster, notifier, now=at, worker=worker, everything=True)
    assert report.failed == {}


async def _rows(store: Store) -> list[AlertThread]:
    return await store.alert_threads(CHANNEL, ALGORITHM, [OLD_KEY, FEATURES, NAN])


# 1. An upgrade never re-alerts a known bug ------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "told", "after"),
    [
        (AlertState.OPEN, "recurrence", AlertState.OPEN),
        (AlertState.RESOLVED, "regression", AlertState.REGRESSED),
        (AlertState.MUTED, "muted", AlertState.MUTED),
    ],
)
async def test_a_known_bug_is_told_in_its_old_thread_and_rekeyed(
    store: Store, state: AlertState, told: str, after: AlertState
) -> None:
    cluster, notifier = Cluster(), KeepingNotifier()
    sub = await _known_channel(store, old_thread(state))
    at = T0 + timedelta(minutes=15)
    first = cluster.add(SKLEARN_FEATURE_COUNT, at, minutes_before=5, n=2)
    await _run(store, cluster, notifier, at)

    assert notifier.said == [(told, CHANNEL, FEATURES)]  # no new alert, no first reply
    adopted = await store.find_alert_thread(CHANNEL, ALGORITHM, FEATURES)
    assert adopted is not None
    assert (adopted.fingerprint, adopted.previous_fingerprint) == (FEATURES, OLD_KEY)
    assert (adopted.parent_ts, adopted.state, adopted.count) == (OLD_PARENT_TS, after, 7)
    assert adopted.versions == ("1.0.0", "2.0.0")
    assert adopted.first_seen_ms == old_thread().first_seen_ms
    # The alert's old buttons carry the version-1 key: they still find it.
    assert await store.find_alert_thread(CHANNEL, ALGORITHM, OLD_KEY) == adopted
    assert await _rows(store) == [adopted]  # re-keyed, not copied
    assert await store.unreported(sub, first) == set()

    # Later runs match it directly: no second adoption, no alert.
    at += timedelta(minutes=15)
    cluster.add(SKLEARN_FEATURE_COUNT, at, minutes_before=1)
    await _run(store, cluster, notifier, at)
    again_told = "muted" if state is AlertState.MUTED else "recurrence"
    assert notifier.said == [(told, CHANNEL, FEATURES), (again_told, CHANNEL, FEATURES)]
    later = await store.find_alert_thread(CHANNEL, ALGORITHM, OLD_KEY)
    assert later is not None
    assert (later.fingerprint, later.previous_fingerprint, later.count) == (FEATURES, OLD_KEY, 8)
    assert len(await _rows(store)) == 1
    # Nothing new: nothing said.
    await _run(store, cluster, notifier, at + timedelta(minutes=15))
    assert len(notifier.said) == 2
    assert notifier.split_from == []


async def test_an_old_button_still_acts_on_the_adopted_thread(store: Store) -> None:
    cluster, notifier = Cluster(), KeepingNotifier()
    await _known_channel(store, old_thread())
    at = T0 + timedelta(minutes=15)
    cluster.add(SKLEARN_FEATURE_COUNT, at)
    await _run(store, cluster, notifier, at)
    old_button = AlertRef.parse(json.dumps({"a": ALGORITHM, "f": OLD_KEY}))  # as 0.1 drew it
    assert old_button is not None
    change = await change_alert(
        store, CHANNEL, old_button, action=AlertAction.RESOLVE, user="U9", now=at
    )
    resolved = change.thread
    assert resolved is not None
    assert (resolved.fingerprint, resolved.state) == (FEATURES, AlertState.RESOLVED)
    at += timedelta(minutes=15)
    cluster.add(SKLEARN_FEATURE_COUNT, at)
    await _run(store, cluster, notifier, at)
    assert notifier.said[-1] == ("regression", CHANNEL, FEATURES)
    thread = await store.find_alert_thread(CHANNEL, ALGORITHM, OLD_KEY)
    assert thread is not None
    assert (thread.state, thread.parent_ts) == (AlertState.REGRESSED, OLD_PARENT_TS)
    assert "alert" not in notifier.kinds()


# 2. A wrongly merged bug is split off once -------------------------------------------------------


async def test_merged_bugs_arriving_together_split_once(store: Store) -> None:
    cluster, notifier = Cluster(), KeepingNotifier()
    await _known_channel(store, old_thread())
    at = T0 + timedelta(minutes=15)
    cluster.add(SKLEARN_FEATURE_COUNT, at, minutes_before=10)  # the oldest group adopts
    cluster.add(SKLEARN_NAN, at, minutes_before=2, n=3)
    await _run(store, cluster, notifier, at)

    assert notifier.said == [
        ("alert", CHANNEL, NAN),
        ("first_reply", CHANNEL, "1.0"),
        ("split_from", CHANNEL, FEATURES),
        ("recurrence", CHANNEL, FEATURES),
    ]
    (split_from,) = notifier.split_from
    assert (split_from.parent_ts, split_from.previous_fingerprint) == (OLD_PARENT_TS, OLD_KEY)
    adopted = await store.find_alert_thread(CHANNEL, ALGORITHM, OLD_KEY)
    assert adopted is not None
    assert (adopted.fingerprint, adopted.parent_ts, adopted.count) == (FEATURES, OLD_PARENT_TS, 6)
    split = await store.find_alert_thread(CHANNEL, ALGORITHM, NAN)
    assert split is not None
    assert (split.parent_ts, split.count, split.previous_fingerprint) == ("1.0", 3, None)
    assert len(await _rows(store)) == 2

    for _ in range(2):  # later runs: news in each thread, nothing split again
        at += timedelta(minutes=15)
        cluster.add(SKLEARN_NAN, at, minutes_before=3)
        cluster.add(SKLEARN_FEATURE_COUNT, at, minutes_before=1)
        before = len(notifier.said)
        await _run(store, cluster, notifier, at)
        assert sorted(notifier.said[before:]) == sorted(
            [("recurrence", CHANNEL, FEATURES), ("recurrence", CHANNEL, NAN)]
        )
    assert len(notifier.split_from) == 1
    assert notifier.kinds().count("alert") == 1
    assert len(await _rows(store)) == 2


async def test_the_oldest_group_adopts_whichever_bug_it_is(store: Store) -> None:
    cluster, notifier = Cluster(), KeepingNotifier()
    await _known_channel(store, old_thread())
    at = T0 + timedelta(minutes=15)
    cluster.add(SKLEARN_NAN, at, minutes_before=10)
    cluster.add(SKLEARN_FEATURE_COUNT, at, minutes_before=2)
    await _run(store, cluster, notifier, at)
    assert notifier.said == [
        ("alert", CHANNEL, FEATURES),
        ("first_reply", CHANNEL, "1.0"),
        ("split_from", CHANNEL, NAN),
        ("recurrence", CHANNEL, NAN),
    ]
    adopted = await store.find_alert_thread(CHANNEL, ALGORITHM, OLD_KEY)
    assert adopted is not None
    assert (adopted.fingerprint, adopted.parent_ts) == (NAN, OLD_PARENT_TS)


async def test_a_merged_bug_first_seen_after_the_adoption_is_still_split_off(
    store: Store,
) -> None:
    cluster, notifier = Cluster(), KeepingNotifier()
    await _known_channel(store, old_thread())
    at = T0 + timedelta(minutes=15)
    cluster.add(SKLEARN_FEATURE_COUNT, at, minutes_before=5)
    await _run(store, cluster, notifier, at)
    assert notifier.said == [("recurrence", CHANNEL, FEATURES)]

    at += timedelta(minutes=15)
    cluster.add(SKLEARN_NAN, at, minutes_before=5, n=2)
    cluster.add(SKLEARN_FEATURE_COUNT, at, minutes_before=1)
    await _run(store, cluster, notifier, at)
    assert notifier.said[1:] == [
        ("alert", CHANNEL, NAN),
        ("first_reply", CHANNEL, "1.0"),
        ("split_from", CHANNEL, FEATURES),  # found through previous_fingerprint
        ("recurrence", CHANNEL, FEATURES),
    ]
    (split_from,) = notifier.split_from
    assert (split_from.parent_ts, split_from.previous_fingerprint) == (OLD_PARENT_TS, OLD_KEY)

    at += timedelta(minutes=15)
    cluster.add(SKLEARN_NAN, at, minutes_before=1)
    await _run(store, cluster, notifier, at)
    assert notifier.said[-1] == ("recurrence", CHANNEL, NAN)
    assert notifier.kinds().count("alert") == 1
    assert len(notifier.split_from) == 1
    old_button = await store.find_alert_thread(CHANNEL, ALGORITHM, OLD_KEY)
    assert old_button is not None
    assert old_button.fingerprint == FEATURES  # the old key keeps naming the adopted thread


# 3. Two runners at once --------------------------------------------------------------------------


async def test_two_stores_adopting_one_thread_at_once_make_one_winner(database_url: str) -> None:
    async with await Store.open(database_url) as first, await Store.open(database_url) as second:
        await _known_channel(first, old_thread())
        # Both new groups of the old key, each tried by both stores, all at once.
        adopters = [
            replace(old_thread(), fingerprint=key, previous_fingerprint=OLD_KEY)
            for key in (FEATURES, NAN)
        ]
        tries = [
            (first if i % 2 else second).adopt_alert_thread(adopters[i // 2 % 2]) for i in range(12)
        ]
        won = await asyncio.gather(*tries)
        assert won.count(True) == 1
        (row,) = await _rows(second)
        assert row.fingerprint in (FEATURES, NAN)
        assert row.previous_fingerprint == OLD_KEY
        assert row.parent_ts == OLD_PARENT_TS
        again = replace(old_thread(), fingerprint=NAN, previous_fingerprint=OLD_KEY)
        assert not await first.adopt_alert_thread(again)


async def test_two_runners_at_once_tell_a_known_bug_once(database_url: str) -> None:
    async with await Store.open(database_url) as first, await Store.open(database_url) as second:
        await _known_channel(first, old_thread())
        cluster, notifier = Cluster(), KeepingNotifier()
        at = T0 + timedelta(minutes=15)
        cluster.add(SKLEARN_FEATURE_COUNT, at, minutes_before=5)
        cluster.add(SKLEARN_NAN, at, minutes_before=1)
        await asyncio.gather(
            run_digests(first, cluster, notifier, now=at, worker="serve"),
            run_digests(second, cluster, notifier, now=at, worker="once"),
        )
        assert sorted(notifier.kinds()) == ["alert", "first_reply", "recurrence", "split_from"]
        assert len(await _rows(first)) == 2


# 4. A database of the previous release -----------------------------------------------------------


def _upgrade_to(connection: Connection, revision: str) -> None:
    """Alembic as `bot.store.engine._upgrade_to_head` runs it, up to `revision`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def _old_release_database(url: str) -> None:
    """Schema 0001 with what the previous release wrote: a subscription, one record it
    reported and a resolved alert thread keyed by a version-1 fingerprint."""
    sqlite = url.startswith("sqlite:")
    created, changed = (
        ("'2026-12-01 12:00:00.000000'", "'2026-12-05 09:30:00.000000'")
        if sqlite
        else ("'2026-12-01 12:00:00+00'", "'2026-12-05 09:30:00+00'")
    )
    async with raw_engine(url) as engine, engine.connect() as connection:
        await connection.run_sync(_upgrade_to, "0001")
        await connection.commit()
        await connection.execute(
            text(
                "INSERT INTO subscriptions (channel_id, algorithm, schedule, timezone, created_by,"
                " created_at, next_run_at, paused_reason, consecutive_failures, outage_notified,"
                f" lease_owner, lease_until) VALUES ('{CHANNEL}', '{ALGORITHM}', 'every:15m',"
                f" 'UTC', 'U1', {created}, {created}, NULL, 0, FALSE, NULL, NULL)"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO reported_records (subscription_id, request_id, created_at_ms,"
                f" reported_at) SELECT id, 'req-old', 1764590000000, {created}"
                " FROM subscriptions"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO alert_threads (channel_id, algorithm, fingerprint, parent_ts, state,"
                " muted_until, state_changed_by, state_changed_at, count, versions,"
                " first_seen_ms, last_seen_ms, error_type, headline) VALUES"
                f" ('{CHANNEL}', '{ALGORITHM}', '{OLD_KEY}', '{OLD_PARENT_TS}', 'resolved',"
                f" NULL, 'U0BOB', {changed}, 5, '[\"1.0.0\"]', 1764590000000, 1764600000000,"
                f" '{ERROR_TYPE}', 'ValueError: X has 512 features per sample; expecting 2048')"
            )
        )
        await connection.commit()
        version = await connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
        assert version.scalar_one() == "0001"


async def test_the_previous_release_database_is_upgraded_with_its_rows(database_url: str) -> None:
    await _old_release_database(database_url)
    async with await Store.open(database_url) as store:
        (subscription,) = await store.all_subscriptions()
        assert (subscription.channel_id, subscription.algorithm) == (CHANNEL, ALGORITHM)
        assert subscription.created_at == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        kept = await store.find_alert_thread(CHANNEL, ALGORITHM, OLD_KEY)
        assert kept == AlertThread(
            channel_id=CHANNEL,
            algorithm=ALGORITHM,
            fingerprint=OLD_KEY,
            parent_ts=OLD_PARENT_TS,
            state=AlertState.RESOLVED,
            muted_until=None,
            state_changed_by="U0BOB",
            state_changed_at=datetime(2026, 12, 5, 9, 30, tzinfo=UTC),
            count=5,
            versions=("1.0.0",),
            first_seen_ms=1764590000000,
            last_seen_ms=1764600000000,
            error_type=ERROR_TYPE,
            headline="ValueError: X has 512 features per sample; expecting 2048",
            previous_fingerprint=None,
        )
        assert await store.unreported(subscription.id, ["req-old", "req-x"]) == {"req-x"}
        # A regressed state can now be written, and read back.
        regressed = replace(kept, state=AlertState.REGRESSED, state_changed_by=None)
        assert await store.update_alert_thread(regressed, fields=ALERT_STATE)
        assert await store.find_alert_thread(CHANNEL, ALGORITHM, OLD_KEY) == regressed
        assert await store.update_alert_thread(kept, fields=ALERT_STATE)

    async with raw_engine(database_url) as engine:
        async with engine.connect() as connection:

            def differences(sync: Connection) -> list[Any]:
                context = MigrationContext.configure(sync, opts={"version_table": VERSION_TABLE})
                return list(compare_metadata(context, metadata))

            assert await connection.run_sync(differences) == []
            version = await connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
            assert version.scalar_one() == ScriptDirectory(str(MIGRATIONS)).get_current_head()
        with pytest.raises(IntegrityError):  # the state is still checked
            async with engine.begin() as connection:
                await connection.execute(text("UPDATE alert_threads SET state = 'bogus'"))


async def test_after_the_upgrade_the_old_alert_hears_of_its_bug(database_url: str) -> None:
    await _old_release_database(database_url)
    cluster, notifier = Cluster(), KeepingNotifier()
    at = T0 + timedelta(minutes=15)
    old = ErrorRecord(created_at=1764590000000, request_id="req-old", error=SKLEARN_FEATURE_COUNT)
    cluster.records[ALGORITHM] = [old]  # reported by the previous release: not told again
    cluster.add(SKLEARN_FEATURE_COUNT, at, minutes_before=3)
    async with await Store.open(database_url) as store:
        await _run(store, cluster, notifier, at)
        assert notifier.said == [("regression", CHANNEL, FEATURES)]
        thread = await store.find_alert_thread(CHANNEL, ALGORITHM, OLD_KEY)
        assert thread is not None
        assert (thread.fingerprint, thread.previous_fingerprint) == (FEATURES, OLD_KEY)
        assert (thread.state, thread.count, thread.parent_ts) == (
            AlertState.REGRESSED, 6, OLD_PARENT_TS,
        )  # fmt: skip


# The old alert under way: a click through its old buttons, its message deleted -------------------


async def test_a_click_on_the_old_alert_during_the_adopting_run_is_kept(store: Store) -> None:
    cluster, notifier = Cluster(), FlakyNotifier()
    await _known_channel(store, old_thread())

    async def resolve() -> None:  # Resolve clicked on the old alert while the split one posts
        old_button = AlertRef.parse(json.dumps({"a": ALGORITHM, "f": OLD_KEY}))
        assert old_button is not None
        change = await change_alert(
            store, CHANNEL, old_button, action=AlertAction.RESOLVE, user="U9", now=T0
        )
        assert change.thread is not None

    notifier.on_alert = resolve
    at = T0 + timedelta(minutes=15)
    cluster.add(SKLEARN_FEATURE_COUNT, at, minutes_before=10)
    cluster.add(SKLEARN_NAN, at, minutes_before=2)
    await _run(store, cluster, notifier, at)
    assert notifier.said[-1] == ("regression", CHANNEL, FEATURES)  # it saw the click
    thread = await store.find_alert_thread(CHANNEL, ALGORITHM, OLD_KEY)
    assert thread is not None
    assert (thread.fingerprint, thread.state, thread.count) == (
        FEATURES, AlertState.REGRESSED, 6,
    )  # fmt: skip


async def test_news_of_a_deleted_old_alert_get_a_new_alert_under_the_new_key(
    store: Store,
) -> None:
    cluster, notifier = Cluster(), FlakyNotifier()
    await _known_channel(store, old_thread())
    notifier.deleted.add(OLD_PARENT_TS)
    at = T0 + timedelta(minutes=15)
    cluster.add(SKLEARN_FEATURE_COUNT, at, n=2)
    await _run(store, cluster, notifier, at)
    assert notifier.kinds() == ["alert", "first_reply"]
    (thread,) = await _rows(store)
    assert (thread.fingerprint, thread.previous_fingerprint) == (FEATURES, OLD_KEY)
    assert (thread.parent_ts, thread.count) == ("1.0", 7)
    at += timedelta(minutes=15)
    cluster.add(SKLEARN_FEATURE_COUNT, at)
    await _run(store, cluster, notifier, at)
    assert notifier.said[-1] == ("recurrence", CHANNEL, FEATURES)
