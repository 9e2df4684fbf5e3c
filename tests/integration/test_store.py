"""The store's contract, on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set.

Each PostgreSQL test gets a schema of its own (a random name, put first in `search_path` through
the URL) that is dropped afterwards, so tests never see each other's rows, nor anyone else's.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.domain.alerts import (
    ALERT_STATE,
    AlertAction,
    AlertRef,
    AlertState,
    AlertThread,
    DigestRun,
    FinishedRun,
    NoticeKind,
    PendingNotice,
    PostIntent,
    PostKind,
    RunOutcome,
    Subscription,
)
from bot.store import engine as engine_module
from bot.store.engine import MIGRATIONS
from bot.store.exceptions import ClockSkewed, InvalidDatabaseUrl, StoreUnavailable
from bot.store.schema import VERSION_TABLE, metadata
from bot.store.subscriptions import SUBSCRIPTION_COLUMNS
from bot.usecases.alerts import change_alert
from tests.postgres import NO_POSTGRES, POSTGRES_URL
from tests.store_probe import ProbedStore as Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHANNEL = "C0123456789"
OTHER_CHANNEL = "C0987654321"
ALGORITHM = "acme/image_tagger"
USER = "U0ALICE"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    async with await Store.open(database_url) as opened:
        yield opened


@asynccontextmanager
async def raw_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the same database that bypasses the store, to look at what it wrote."""
    if database_url.startswith("sqlite:"):
        engine = create_async_engine(database_url.replace("sqlite:", "sqlite+aiosqlite:", 1))
    else:
        engine = create_async_engine(
            "postgresql+asyncpg://", async_creator=partial(asyncpg.connect, database_url)
        )
    try:
        yield engine
    finally:
        await engine.dispose()


async def subscribe(
    store: Store,
    algorithm: str = ALGORITHM,
    *,
    channel: str = CHANNEL,
    schedule: str = "every:15m",
    next_run_at: datetime = NOW,
    now: datetime = NOW,
) -> Subscription:
    return await store.upsert_subscription(
        channel, algorithm, schedule, "Europe/Berlin", USER, next_run_at, now
    )


def alert_thread(fingerprint: str = "3f9a0c1e", **changes: Any) -> AlertThread:
    thread = AlertThread(
        channel_id=CHANNEL,
        algorithm=ALGORITHM,
        fingerprint=fingerprint,
        parent_ts="1767225600.000100",
        state=AlertState.OPEN,
        muted_until=None,
        state_changed_by=None,
        state_changed_at=None,
        count=3,
        versions=("0.1.0", "0.2.0"),
        first_seen_ms=1_767_225_000_000,
        last_seen_ms=1_767_225_600_000,
        error_type="AlgorithmError",
        headline="ValueError: image is empty",
    )
    return replace(thread, **changes)


# Opening: URLs, migrations, restarts


async def test_open_builds_exactly_the_schema_of_schema_py(database_url: str) -> None:
    async with await Store.open(database_url), raw_engine(database_url) as engine:

        def differences(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return list(compare_metadata(context, metadata))

        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            version = await connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
            head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
            assert version.scalar_one() == head


async def test_sqlite_database_is_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    async with await Store.open(url), raw_engine(url) as engine, engine.connect() as connection:
        journal_mode = await connection.execute(text("PRAGMA journal_mode"))
        assert journal_mode.scalar_one() == "wal"


async def test_everything_survives_a_restart(database_url: str) -> None:
    async with await Store.open(database_url) as first:
        subscription = await subscribe(first)
        await first.mark_reported(subscription.id, [("req-1", 1_000)], NOW)
        await first.create_alert_thread(alert_thread())
    async with await Store.open(database_url) as second:
        assert await second.get_subscription(subscription.id) == subscription
        assert await second.unreported(subscription.id, ["req-1", "req-2"]) == {"req-2"}
        assert await second.find_alert_thread(CHANNEL, ALGORITHM, "3f9a0c1e") == alert_thread()


_OPENER = """
import asyncio, sys, time
from bot.store.repository import Store

async def main(url: str, start_at: float) -> None:
    await asyncio.sleep(max(0.0, start_at - time.time()))
    async with await Store.open(url):
        print("opened", flush=True)

asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


async def test_processes_opening_a_new_database_at_once_all_migrate_it(database_url: str) -> None:
    start_at = time.time() + 2.0  # after the interpreters have started and imported
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _OPENER,
            database_url,
            str(start_at),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(4)
    ]
    outputs = [await process.communicate() for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()
        assert stdout.decode().split() == ["opened"]
    async with await Store.open(database_url) as store:
        assert await store.all_subscriptions() == []


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite+aiosqlite:///file:store?mode=memory&uri=true",
        "mysql://root@127.0.0.1/test",
        "algo-errors.db",
        "postgresql://bot@127.0.0.1:54x2/algo",  # a typo, not an outage to wait out
        "postgresql://bot@127.0.0.1/algo?sslmode=requires",
    ],
)
async def test_urls_the_store_cannot_use_are_refused_with_a_reason(url: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite:///") as raised:
        await Store.open(url)
    assert isinstance(raised.value, InvalidDatabaseUrl)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bot:Zq7#Xv@127.0.0.1:5432/algo",  # `#` not encoded: the port is `Zq7`
        "postgresql://bot:Zq7/Xv@127.0.0.1/algo",
        "postgresql://bot:Zq7?Xv@[::1/algo",
    ],
)
async def test_a_password_that_breaks_the_url_is_never_quoted_in_the_refusal(url: str) -> None:
    with pytest.raises(InvalidDatabaseUrl) as raised:
        await Store.open(url)
    said = str(raised.value)
    assert "percent-encoded" in said
    assert "Zq7" not in said
    assert "Xv" not in said


async def test_a_schema_a_newer_release_migrated_is_used_as_it_is(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A rolling upgrade's old pod restarting, a rollback, an old CronJob: the schema is at a
    revision this release does not know. It runs on it (each release's schema keeps the
    previous one working) and says so, instead of failing at start with Alembic's error."""
    async with await Store.open(database_url) as store:
        await subscribe(store)
    async with raw_engine(database_url) as raw, raw.begin() as connection:
        await connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    async with await Store.open(database_url) as store:
        assert [s.algorithm for s in await store.channel_subscriptions(CHANNEL)] == [ALGORITHM]
    assert "schema is at revision 0099, newer than this release knows" in caplog.text


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("target_session_attrs=bogus", "target_session_attrs=bogus is none of any, "),
        ("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem", "/nonexistent/ca.pem: no such"),
    ],
)
async def test_connection_options_asyncpg_would_refuse_only_at_connect_are_refused_now(
    query: str, said: str
) -> None:
    """Refused at start as settings (exit 2), not taken for a database that does not answer
    (which `serve` would retry for ever)."""
    with pytest.raises(InvalidDatabaseUrl, match=said):
        await Store.open(f"postgresql://bot@127.0.0.1:5432/algo?{query}")


async def test_in_memory_sqlite_is_refused_because_processes_cannot_share_it() -> None:
    with pytest.raises(InvalidDatabaseUrl, match=r"in-memory SQLite .* use a file"):
        await Store.open("sqlite:///:memory:")


async def test_a_sqlite_file_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="unable to open database file"):
        await Store.open(f"sqlite:///{tmp_path / 'no-such-directory' / 'store.db'}")


async def test_a_store_connected_later_opens_at_its_first_use_once_it_can(tmp_path: Path) -> None:
    directory = tmp_path / "mounted-later"
    store = Store.connect_later(f"sqlite:///{directory / 'store.db'}")
    try:
        with pytest.raises(StoreUnavailable, match="unable to open database file"):
            await store.channel_subscriptions(CHANNEL)
        with pytest.raises(StoreUnavailable, match="unable to open database file"):
            await store.database.ping()  # says why, without trying to migrate itself
        directory.mkdir()
        await asyncio.sleep(engine_module.FAILED_RECENTLY_S)  # the failure answers that long
        assert await store.channel_subscriptions(CHANNEL) == []  # migrated, then read
        await store.database.ping()
    finally:
        await store.close()


@pytest.mark.skipif(not POSTGRES_URL, reason=NO_POSTGRES)
async def test_a_postgresql_server_that_refuses_is_unavailable_without_the_password() -> None:
    with pytest.raises(StoreUnavailable) as refused:
        await Store.open("postgresql://bot:s3cret-password@127.0.0.1:1/algo_errors")
    assert "s3cret" not in str(refused.value)
    with pytest.raises(StoreUnavailable, match='database "no_such_database_here" does not exist'):
        await Store.open(POSTGRES_URL.rsplit("/", 1)[0] + "/no_such_database_here")


# Subscriptions


async def test_a_new_subscription_holds_what_was_given(store: Store) -> None:
    next_run = NOW + timedelta(minutes=15)
    subscription = await subscribe(store, next_run_at=next_run)
    assert subscription == Subscription(
        id=subscription.id,
        channel_id=CHANNEL,
        algorithm=ALGORITHM,
        schedule="every:15m",
        timezone="Europe/Berlin",
        created_by=USER,
        created_at=NOW,
        next_run_at=next_run,
        paused_reason=None,
        consecutive_failures=0,
        outage_notified=False,
    )
    assert await store.get_subscription(subscription.id) == subscription
    assert await store.get_subscription(subscription.id + 1000) is None


async def test_subscribing_again_changes_the_schedule_and_keeps_what_was_seen(
    store: Store,
) -> None:
    first = await subscribe(store, schedule="every:15m")
    await store.mark_reported(first.id, [("req-old", 1_000)], NOW)
    await store.pause(first.id, "channel_not_found")
    later = NOW + timedelta(days=2)
    again = await store.upsert_subscription(
        CHANNEL, ALGORITHM, "daily:09:00", "America/New_York", "U0BOB", later, later
    )
    assert again == replace(
        first, schedule="daily:09:00", timezone="America/New_York", next_run_at=later
    )
    assert again.paused_reason is None
    assert await store.unreported(first.id, ["req-old", "req-new"]) == {"req-new"}
    assert await store.channel_subscriptions(CHANNEL) == [again]


async def test_channel_subscriptions_lists_only_that_channel_by_algorithm(store: Store) -> None:
    zebra = await subscribe(store, "acme/zebra")
    alpha = await subscribe(store, "acme/alpha")
    by_id = await subscribe(store, "id:3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8")
    elsewhere = await subscribe(store, "acme/alpha", channel=OTHER_CHANNEL)
    assert elsewhere.id not in {zebra.id, alpha.id, by_id.id}
    assert await store.channel_subscriptions(CHANNEL) == [alpha, zebra, by_id]
    assert await store.channel_subscriptions(OTHER_CHANNEL) == [elsewhere]
    assert await store.channel_subscriptions("C0NOBODY") == []
    assert await store.all_subscriptions() == [zebra, alpha, by_id, elsewhere]


async def test_removing_a_subscription_forgets_its_records_and_keeps_its_alert_threads(
    store: Store,
) -> None:
    subscription = await subscribe(store)
    await store.mark_reported(subscription.id, [("req-1", 1_000), ("req-2", 2_000)], NOW)
    await store.record_digest_run(DigestRun(subscription.id, NOW, NOW, RunOutcome.OK, 2, None))
    await store.create_alert_thread(alert_thread())

    assert await store.remove_subscription(CHANNEL, ALGORITHM) is True
    assert await store.remove_subscription(CHANNEL, ALGORITHM) is False
    assert await store.get_subscription(subscription.id) is None
    assert await store.channel_subscriptions(CHANNEL) == []
    assert await store.unreported(subscription.id, ["req-1", "req-2"]) == {"req-1", "req-2"}
    assert await store.recent_digest_runs(subscription.id, 10) == []
    assert await store.find_alert_thread(CHANNEL, ALGORITHM, "3f9a0c1e") == alert_thread()

    again = await subscribe(store)
    assert again.id != subscription.id
    assert await store.find_alert_thread(CHANNEL, ALGORITHM, "3f9a0c1e") == alert_thread()


async def test_removing_a_subscription_leaves_the_channels_other_ones(store: Store) -> None:
    kept = await subscribe(store, "acme/kept")
    await subscribe(store, "acme/removed")
    await store.mark_reported(kept.id, [("req-1", 1_000)], NOW)
    assert await store.remove_subscription(CHANNEL, "acme/removed") is True
    assert await store.channel_subscriptions(CHANNEL) == [kept]
    assert await store.unreported(kept.id, ["req-1"]) == set()


async def test_due_subscriptions_are_those_not_paused_whose_time_has_come_earliest_first(
    store: Store,
) -> None:
    late = await subscribe(store, "acme/late", next_run_at=NOW - timedelta(minutes=1))
    exactly_now = await subscribe(store, "acme/now", next_run_at=NOW)
    early = await subscribe(store, "acme/early", next_run_at=NOW - timedelta(hours=1))
    await subscribe(store, "acme/future", next_run_at=NOW + timedelta(seconds=1))
    paused = await subscribe(store, "acme/paused", next_run_at=NOW - timedelta(hours=2))
    assert await store.pause(paused.id, "is_archived") is True
    assert await store.due_subscriptions(NOW) == [early, late, exactly_now]
    assert await store.due_subscriptions(NOW - timedelta(days=1)) == []


async def test_times_come_back_as_aware_utc_and_compare_as_instants(store: Store) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 12:30 in Berlin (winter, +01:00) is 11:30 UTC: due at NOW, though "12:30" > "12:00".
    local = datetime(2026, 3, 1, 12, 30, tzinfo=berlin)
    plus_five = timezone(timedelta(hours=5))
    subscription = await store.upsert_subscription(
        CHANNEL, ALGORITHM, "daily:12:30", "Europe/Berlin", USER, local, NOW.astimezone(plus_five)
    )
    for value in (subscription, await store.get_subscription(subscription.id)):
        assert value is not None
        assert value.next_run_at == local
        assert value.next_run_at.utcoffset() == timedelta(0)
        assert value.next_run_at.tzinfo is UTC
        assert value.created_at == NOW
        assert value.created_at.tzinfo is UTC
    assert await store.due_subscriptions(NOW) == [subscription]

    muted_until = datetime(2026, 3, 2, 9, 0, tzinfo=berlin)
    thread = alert_thread(state=AlertState.MUTED, muted_until=muted_until, state_changed_at=local)
    await store.create_alert_thread(thread)
    stored = await store.find_alert_thread(CHANNEL, ALGORITHM, thread.fingerprint)
    assert stored is not None
    assert stored.muted_until == muted_until
    assert stored.muted_until is not None
    assert stored.muted_until.tzinfo is UTC


async def test_naive_times_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        await subscribe(store, next_run_at=datetime(2026, 3, 1, 12, 0))
    assert await store.all_subscriptions() == []


# Leases


async def test_a_claim_is_exclusive_until_finished(store: Store) -> None:
    subscription = await subscribe(store)
    assert await store.claim(subscription.id, "worker-a", NOW, 300) is True
    assert await store.claim(subscription.id, "worker-b", NOW, 300) is False
    assert await store.claim(subscription.id, "worker-a", NOW, 300) is False  # no re-entry
    assert await store.finish(subscription.id, "worker-b", next_run_at=NOW, succeeded=True) is False
    assert await store.claim(subscription.id, "worker-b", NOW, 300) is False  # still a's

    next_run = NOW + timedelta(minutes=15)
    assert (
        await store.finish(subscription.id, "worker-a", next_run_at=next_run, succeeded=True)
        is True
    )
    assert (await store.get_subscription(subscription.id)) == replace(
        subscription, next_run_at=next_run
    )
    assert await store.claim(subscription.id, "worker-b", NOW, 300) is False  # not due now
    assert await store.claim(subscription.id, "worker-b", next_run, 300) is True


async def test_an_expired_lease_can_be_taken_over_and_its_late_finish_does_nothing(
    store: Store,
) -> None:
    subscription = await subscribe(store)
    assert await store.claim(subscription.id, "worker-a", NOW, 60) is True
    assert await store.claim(subscription.id, "worker-b", NOW + timedelta(seconds=59), 60) is False
    taken_over_at = NOW + timedelta(seconds=60)
    assert await store.claim(subscription.id, "worker-b", taken_over_at, 60) is True

    late = NOW + timedelta(days=1)
    assert (
        await store.finish(subscription.id, "worker-a", next_run_at=late, succeeded=False) is False
    )
    unchanged = await store.get_subscription(subscription.id)
    assert unchanged == subscription  # neither the next run nor the failure count moved

    next_run = NOW + timedelta(minutes=15)
    assert (
        await store.finish(subscription.id, "worker-b", next_run_at=next_run, succeeded=True)
        is True
    )
    finished = await store.get_subscription(subscription.id)
    assert finished is not None
    assert finished.next_run_at == next_run


async def test_finish_counts_failures_in_a_row_and_a_success_resets_them(store: Store) -> None:
    subscription = await subscribe(store)
    for expected in (1, 2, 3):
        assert await store.claim(subscription.id, "worker", NOW, 60) is True
        await store.finish(subscription.id, "worker", next_run_at=NOW, succeeded=False)
        current = await store.get_subscription(subscription.id)
        assert current is not None
        assert current.consecutive_failures == expected
    assert await store.claim(subscription.id, "worker", NOW, 60) is True
    await store.finish(subscription.id, "worker", next_run_at=NOW, succeeded=True)
    recovered = await store.get_subscription(subscription.id)
    assert recovered is not None
    assert recovered.consecutive_failures == 0


async def test_force_claims_a_subscription_that_is_not_due_but_never_a_paused_one(
    store: Store,
) -> None:
    future = await subscribe(store, "acme/future", next_run_at=NOW + timedelta(hours=3))
    assert await store.claim(future.id, "worker", NOW, 60) is False
    assert await store.claim(future.id, "worker", NOW, 60, force=True) is True
    assert await store.claim(future.id, "other", NOW, 60, force=True) is False  # leased

    paused = await subscribe(store, "acme/paused")
    await store.pause(paused.id, "not_in_channel")
    assert await store.claim(paused.id, "worker", NOW, 60) is False
    assert await store.claim(paused.id, "worker", NOW, 60, force=True) is False
    assert await store.claim(future.id + paused.id + 1000, "worker", NOW, 60, force=True) is False


async def test_a_pause_lets_the_running_lease_finish_and_subscribing_again_resumes(
    store: Store,
) -> None:
    subscription = await subscribe(store)
    assert await store.claim(subscription.id, "worker", NOW, 60) is True
    assert await store.pause(subscription.id, "channel_not_found") is True
    assert await store.finish(subscription.id, "worker", next_run_at=NOW, succeeded=True) is True
    paused = await store.get_subscription(subscription.id)
    assert paused is not None
    assert paused.paused_reason == "channel_not_found"
    assert await store.claim(subscription.id, "worker", NOW, 60) is False
    assert await store.due_subscriptions(NOW) == []

    await subscribe(store)
    assert await store.claim(subscription.id, "worker", NOW, 60) is True
    assert await store.pause(subscription.id + 1000, "channel_not_found") is False


async def test_a_notice_is_recorded_under_the_lease_and_settled_only_while_it_is_stored(
    store: Store,
) -> None:
    subscription = await subscribe(store)
    notice = PendingNotice(NoticeKind.OUTAGE, "n1", NOW)
    assert await store.record_notice(subscription.id, notice, "worker") is False  # no lease
    assert await store.claim(subscription.id, "worker", NOW, 60) is True
    assert await store.record_notice(subscription.id, notice, "other") is False
    assert await store.record_notice(subscription.id, notice, "worker") is True
    found = await store.get_subscription(subscription.id)
    assert found is not None
    assert found.pending_notice == notice  # read back as written, its time included
    # A run whose lease ran out does not settle the notice the next holder stored.
    later = PendingNotice(NoticeKind.OUTAGE, "n2", NOW + timedelta(minutes=2))
    assert await store.record_notice(subscription.id, later, "worker") is True
    assert await store.settle_notice(subscription.id, notice, outage_notified=True) is False
    assert await store.settle_notice(subscription.id, later, outage_notified=True) is True
    settled = await store.get_subscription(subscription.id)
    assert settled is not None
    assert (settled.pending_notice, settled.outage_notified) == (None, True)
    again = await subscribe(store)  # subscribing again does not forget the outage notice
    assert again.outage_notified is True
    recovered = PendingNotice(NoticeKind.RECOVERED, "n3", NOW + timedelta(minutes=5))
    assert await store.record_notice(subscription.id, recovered, "worker") is True
    assert await store.settle_notice(subscription.id, recovered, outage_notified=False) is True
    current = await store.get_subscription(subscription.id)
    assert current is not None
    assert current.outage_notified is False
    assert (
        await store.settle_notice(subscription.id + 1000, recovered, outage_notified=True) is False
    )


async def test_twenty_concurrent_claims_of_one_subscription_make_one_winner(
    database_url: str,
) -> None:
    async with await Store.open(database_url) as one, await Store.open(database_url) as two:
        for round_number in range(3):
            subscription = await subscribe(one, f"acme/contended_{round_number}")
            claims = [
                (one if index % 2 else two).claim(subscription.id, f"worker-{index}", NOW, 60)
                for index in range(20)
            ]
            results = await asyncio.gather(*claims)
            assert results.count(True) == 1, results


_CLAIMER = """
import asyncio, sys, time
from datetime import UTC, datetime
from tests.store_probe import ProbedStore as Store

async def main(url: str, worker: str) -> None:
    async with await Store.open(url) as store:
        print("ready", flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            subscription_id, claim_at = line.split()
            await asyncio.sleep(max(0.0, float(claim_at) - time.time()))
            if subscription_id == "due":  # the bulk claim a digest run makes
                won = bool(await store.claim_due(worker, datetime.now(UTC), 60))
            else:
                won = await store.claim(int(subscription_id), worker, datetime.now(UTC), 60)
            print("won" if won else "lost", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize("bulk", [False, True], ids=["claim", "claim_due"])
async def test_processes_claiming_one_subscription_at_the_same_moment_make_one_winner(
    database_url: str, bulk: bool
) -> None:
    async with await Store.open(database_url) as store:
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _CLAIMER,
                database_url,
                f"process-{index}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for index in range(4)
        ]
        try:
            for process in processes:
                assert process.stdout is not None
                assert await process.stdout.readline() == b"ready\n"
            for round_number in range(8):
                due = datetime.now(UTC) - timedelta(minutes=1)
                subscription = await subscribe(store, f"acme/raced_{round_number}", next_run_at=due)
                claim_at = time.time() + 0.2
                for process in processes:
                    assert process.stdin is not None
                    target = "due" if bulk else subscription.id
                    process.stdin.write(f"{target} {claim_at}\n".encode())
                    await process.stdin.drain()
                answers = []
                for process in processes:
                    assert process.stdout is not None
                    answers.append((await process.stdout.readline()).decode().strip())
                assert sorted(answers) == ["lost", "lost", "lost", "won"], answers
        finally:
            for process in processes:
                assert process.stdin is not None
                process.stdin.close()
            outputs = [await process.communicate() for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr.decode()


# Reported records


async def test_unreported_is_what_the_subscription_has_not_reported(store: Store) -> None:
    subscription = await subscribe(store)
    other = await subscribe(store, "acme/other")
    assert await store.unreported(subscription.id, []) == set()
    assert await store.unreported(subscription.id, ["req-1", "req-2"]) == {"req-1", "req-2"}
    await store.mark_reported(subscription.id, [("req-1", 1_000)], NOW)
    assert await store.unreported(subscription.id, ["req-1", "req-2", "req-2"]) == {"req-2"}
    assert await store.unreported(other.id, ["req-1"]) == {"req-1"}  # per subscription


async def test_unreported_answers_for_more_ids_than_one_query_may_bind(store: Store) -> None:
    subscription = await subscribe(store)
    ids = [f"req-{index:05d}" for index in range(1_800)]
    await store.mark_reported(subscription.id, [(id_, index) for index, id_ in enumerate(ids)], NOW)
    more = [f"new-{index:05d}" for index in range(700)]
    assert await store.unreported(subscription.id, more + ids) == set(more)


async def test_marking_reported_twice_is_harmless(store: Store) -> None:
    subscription = await subscribe(store)
    await store.mark_reported(subscription.id, [("req-1", 1_000), ("req-1", 1_000)], NOW)
    await store.mark_reported(subscription.id, [("req-1", 1_000), ("req-2", 2_000)], NOW)
    await store.mark_reported(subscription.id, [], NOW)
    assert await store.unreported(subscription.id, ["req-1", "req-2", "req-3"]) == {"req-3"}


async def test_marking_reported_for_a_removed_subscription_stores_nothing(store: Store) -> None:
    subscription = await subscribe(store)
    await store.remove_subscription(CHANNEL, ALGORITHM)
    await store.mark_reported(subscription.id, [("req-1", 1_000)], NOW)
    assert await store.unreported(subscription.id, ["req-1"]) == {"req-1"}


async def test_pruning_forgets_only_records_older_than_the_bound(
    store: Store, database_url: str
) -> None:
    subscription = await subscribe(store)
    other = await subscribe(store, "acme/other")
    await store.mark_reported(subscription.id, [("old-1", 1_000), ("new-1", 5_000)], NOW)
    await store.mark_reported(other.id, [("old-2", 2_000), ("edge", 4_000)], NOW)
    assert await store.prune_reported(4_000) == 2
    assert await store.prune_reported(4_000) == 0
    assert await store.unreported(subscription.id, ["old-1", "new-1"]) == {"old-1"}
    assert await store.unreported(other.id, ["old-2", "edge"]) == {"old-2"}
    async with raw_engine(database_url) as engine, engine.connect() as connection:
        rows = await connection.execute(text("SELECT count(*) FROM reported_records"))
        assert rows.scalar_one() == 2


# Alert threads


async def test_an_alert_thread_is_stored_once_per_key(store: Store) -> None:
    thread = alert_thread()
    assert await store.find_alert_thread(CHANNEL, ALGORITHM, thread.fingerprint) is None
    assert await store.create_alert_thread(thread) is True
    assert await store.create_alert_thread(replace(thread, parent_ts="1767229999.000200")) is False
    assert await store.find_alert_thread(CHANNEL, ALGORITHM, thread.fingerprint) == thread

    # Each part of the key makes a different thread.
    elsewhere = replace(thread, channel_id=OTHER_CHANNEL, parent_ts="1767229999.000300")
    other_algorithm = replace(thread, algorithm="acme/other", parent_ts="1767229999.000400")
    other_group = alert_thread("77aa00ff", parent_ts="1767229999.000500")
    for distinct in (elsewhere, other_algorithm, other_group):
        assert await store.create_alert_thread(distinct) is True
        stored = await store.find_alert_thread(
            distinct.channel_id, distinct.algorithm, distinct.fingerprint
        )
        assert stored == distinct


async def test_updating_an_alert_thread_keeps_every_field(store: Store) -> None:
    thread = alert_thread()
    await store.create_alert_thread(thread)
    changed = replace(
        thread,
        parent_ts="1767230000.000900",
        state=AlertState.MUTED,
        muted_until=NOW + timedelta(hours=24),
        state_changed_by="U0BOB",
        state_changed_at=NOW,
        count=17,
        versions=("0.1.0", "0.2.0", "1.0.0"),
        last_seen_ms=1_767_230_000_000,
        headline="ValueError: image is empty (again)",
        error_type="UnknownError",
    )
    assert await store.update_alert_thread(changed) is True
    assert await store.find_alert_thread(CHANNEL, ALGORITHM, thread.fingerprint) == changed

    muted_forever = replace(changed, muted_until=None)
    await store.update_alert_thread(muted_forever)
    assert await store.find_alert_thread(CHANNEL, ALGORITHM, thread.fingerprint) == muted_forever

    resolved = replace(changed, state=AlertState.RESOLVED, muted_until=None, versions=())
    await store.update_alert_thread(resolved)
    assert await store.find_alert_thread(CHANNEL, ALGORITHM, thread.fingerprint) == resolved

    assert await store.update_alert_thread(alert_thread("0000dead")) is False
    assert await store.find_alert_thread(CHANNEL, ALGORITHM, "0000dead") is None


# Digest runs


async def test_digest_runs_are_listed_newest_first(store: Store) -> None:
    subscription = await subscribe(store)
    other = await subscribe(store, "acme/other")
    runs = [
        DigestRun(
            subscription.id,
            NOW + timedelta(minutes=15 * index),
            NOW + timedelta(minutes=15 * index, seconds=3),
            RunOutcome.OK if index % 2 else RunOutcome.CLUSTER_FAILED,
            index,
            None if index % 2 else "Unavailable: 503 after 3 attempts",
        )
        for index in range(5)
    ]
    for run in runs:
        await store.record_digest_run(run)
    await store.record_digest_run(DigestRun(other.id, NOW, NOW, RunOutcome.OK, 0, None))

    assert await store.recent_digest_runs(subscription.id, 3) == runs[:1:-1]
    assert await store.recent_digest_runs(subscription.id, 100) == runs[::-1]
    recent = await store.recent_digest_runs(subscription.id, 1)
    assert recent[0].started_at.tzinfo is UTC

    assert await store.prune_digest_runs(NOW + timedelta(minutes=30)) == 3  # 2 + other's 1
    assert await store.recent_digest_runs(subscription.id, 100) == runs[:1:-1]
    assert await store.recent_digest_runs(other.id, 100) == []


async def test_a_digest_run_of_a_removed_subscription_is_not_kept(store: Store) -> None:
    subscription = await subscribe(store)
    await store.remove_subscription(CHANNEL, ALGORITHM)
    await store.record_digest_run(DigestRun(subscription.id, NOW, NOW, RunOutcome.OK, 0, None))
    assert await store.recent_digest_runs(subscription.id, 10) == []


async def test_claim_due_takes_every_due_subscription_once(store: Store) -> None:
    """A bulk claim: one statement, so two workers split the due subscriptions, never share."""
    for channel in ("C1", "C2", "C3"):
        await store.upsert_subscription(channel, "acme/x", "every:15m", "UTC", "U1", NOW, NOW)
    later = await store.upsert_subscription(
        "C4", "acme/x", "every:15m", "UTC", "U1", NOW + timedelta(hours=1), NOW
    )
    first, second = await asyncio.gather(
        store.claim_due("w1", NOW, 60), store.claim_due("w2", NOW, 60)
    )
    assert sorted(s.channel_id for s in [*first, *second]) == ["C1", "C2", "C3"]
    assert {s.id for s in first}.isdisjoint({s.id for s in second})
    everything = await store.claim_due("w3", NOW, 60, everything=True)
    assert [s.id for s in everything] == [later.id]  # the others are leased
    assert await store.claim_due("w4", NOW + timedelta(seconds=61), 60) != []  # leases expire


async def test_reported_by_subscription_reads_several_at_once(store: Store) -> None:
    one = await store.upsert_subscription("C1", "acme/x", "every:15m", "UTC", "U1", NOW, NOW)
    two = await store.upsert_subscription("C2", "acme/x", "every:15m", "UTC", "U1", NOW, NOW)
    three = await store.upsert_subscription("C3", "acme/x", "every:15m", "UTC", "U1", NOW, NOW)
    await store.mark_reported(one.id, [("req-a", 1), ("req-b", 2)], NOW)
    await store.mark_reported(two.id, [("req-b", 2)], NOW)
    reported = await store.reported_by_subscription([one.id, two.id, three.id])
    assert reported == {one.id: {"req-a", "req-b"}, two.id: {"req-b"}, three.id: set()}
    assert await store.reported_by_subscription([]) == {}


async def test_reported_ids_of_any_text_read_back_as_they_were_written(store: Store) -> None:
    one = await store.upsert_subscription("C1", "acme/x", "every:15m", "UTC", "U1", NOW, NOW)
    two = await store.upsert_subscription("C2", "acme/x", "every:15m", "UTC", "U1", NOW, NOW)
    odd = ["req,1", 'req "2"', "req\\3", "réq-4 ✓", "req\n5", "[6]", "", "7:8", "req\x1e9"]
    for subscription in (one, two):
        await store.mark_reported(subscription.id, [(rid, n) for n, rid in enumerate(odd)], NOW)
    reported = await store.reported_by_subscription([one.id, two.id])
    assert reported == {one.id: set(odd), two.id: set(odd)}


async def test_finish_runs_ends_leases_and_records_runs_in_one_go(store: Store) -> None:
    subs = [
        await store.upsert_subscription(f"C{n}", "acme/x", "every:15m", "UTC", "U1", NOW, NOW)
        for n in range(3)
    ]
    assert [s.id for s in await store.claim_due("w1", NOW, 60)] == [s.id for s in subs]
    later = NOW + timedelta(minutes=15)
    runs = [
        FinishedRun(DigestRun(subs[0].id, NOW, NOW, RunOutcome.OK, 2, None), later, True),
        FinishedRun(
            DigestRun(subs[1].id, NOW, NOW, RunOutcome.CLUSTER_FAILED, 0, "503"), later, False
        ),
    ]
    await store.remove_subscription("C2", "acme/x")  # gone meanwhile: nothing kept for it
    await store.finish_runs("w1", [*runs, FinishedRun(
        DigestRun(subs[2].id, NOW, NOW, RunOutcome.OK, 0, None), later, True)])  # fmt: skip
    first = await store.get_subscription(subs[0].id)
    failed = await store.get_subscription(subs[1].id)
    assert first is not None
    assert failed is not None
    assert (first.next_run_at, first.consecutive_failures) == (later, 0)
    assert failed.consecutive_failures == 1
    assert await store.claim(subs[0].id, "w2", later, 60)  # the lease was released
    assert [r.outcome for r in await store.recent_digest_runs(subs[1].id, 5)] == ["cluster_failed"]
    assert await store.get_subscription(subs[2].id) is None
    await store.finish_runs("w1", [])  # nothing to do


async def test_expired_mutes_are_the_muted_threads_whose_time_is_over(store: Store) -> None:
    base = alert_thread()
    over = replace(base, fingerprint="over", state=AlertState.MUTED, muted_until=NOW)
    later = replace(base, fingerprint="later", state=AlertState.MUTED,
                    muted_until=NOW + timedelta(hours=1))  # fmt: skip
    forever = replace(base, fingerprint="forever", state=AlertState.MUTED, muted_until=None)
    elsewhere = replace(over, channel_id="C_ELSEWHERE")
    for thread in (base, over, later, forever, elsewhere):
        assert await store.create_alert_thread(thread)
    expired = await store.expired_mutes(NOW)
    assert sorted((t.channel_id, t.fingerprint) for t in expired) == sorted(
        [("C_ELSEWHERE", "over"), (CHANNEL, "over")]
    )


# Post intents


def _intent(subscription_id: int, name: str, kind: PostKind, at: datetime) -> PostIntent:
    return PostIntent(
        id=name, subscription_id=subscription_id, kind=kind, channel_id=CHANNEL,
        algorithm=ALGORITHM, fingerprint="2:abc", thread_ts=None if kind is PostKind.ALERT
        else "1.5", request_ids=("req-1", "req-2"), created_at=at,
    )  # fmt: skip


async def test_intents_are_open_until_settled_and_a_follow_up_replaces_one_atomically(
    store: Store,
) -> None:
    subscription = await subscribe(store)
    other = await subscribe(store, "acme/other")
    assert await store.claim(subscription.id, "worker-a", NOW, 60)
    alert = _intent(subscription.id, "i-alert", PostKind.ALERT, NOW)
    news = _intent(subscription.id, "i-news", PostKind.NEWS, NOW - timedelta(seconds=1))
    assert await store.record_intent(alert, "worker-a")
    assert await store.record_intent(news, "worker-a")
    assert await store.open_intents([subscription.id, other.id]) == {
        subscription.id: [news, alert],  # oldest first
        other.id: [],
    }
    trace = _intent(subscription.id, "i-trace", PostKind.TRACE, NOW)
    await store.settle_intent(alert.id, then=trace)
    await store.settle_intent(news.id)
    assert await store.open_intents([subscription.id]) == {subscription.id: [trace]}
    await store.settle_intent("never-recorded")  # settling twice or late changes nothing
    assert not await store.settle_intent(alert.id, then=replace(trace, id="i-again"))
    assert await store.open_intents([subscription.id]) == {subscription.id: [trace]}
    await store.remove_subscription(CHANNEL, ALGORITHM)
    assert await store.open_intents([subscription.id]) == {subscription.id: []}
    # Removed while its alert was posted: the trace's intent is not recorded.
    assert not await store.settle_intent(trace.id, then=replace(trace, id="i-after"))
    assert await store.open_intents([subscription.id]) == {subscription.id: []}


async def test_an_intent_is_recorded_only_while_its_worker_holds_the_lease(store: Store) -> None:
    subscription = await subscribe(store)
    alert = _intent(subscription.id, "i-alert", PostKind.ALERT, NOW)
    assert not await store.record_intent(alert, "worker-a")  # not claimed by anyone
    assert await store.claim(subscription.id, "worker-a", NOW, 60)
    assert not await store.record_intent(alert, "worker-b")  # a's lease
    assert await store.open_intents([subscription.id]) == {subscription.id: []}
    assert await store.record_intent(alert, "worker-a")
    assert await store.claim(subscription.id, "worker-b", NOW + timedelta(seconds=60), 60)
    late = _intent(subscription.id, "i-late", PostKind.NEWS, NOW)
    assert not await store.record_intent(late, "worker-a")  # taken over: a posts no more
    assert await store.open_intents([subscription.id]) == {subscription.id: [alert]}
    await store.remove_subscription(CHANNEL, ALGORITHM)
    assert not await store.record_intent(late, "worker-b")  # removed: nobody posts


async def test_an_intent_waits_for_a_takeover_in_progress_and_then_is_refused(
    database_url: str,
) -> None:
    """PostgreSQL reads the last committed lease: the intent's check locks the row, so a claim
    by another worker that is not committed yet is waited for and seen, as a renewal sees it."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: nothing runs in between")
    async with await Store.open(database_url) as store, raw_engine(database_url) as raw:
        subscription = await subscribe(store)
        assert await store.claim(subscription.id, "worker-a", NOW, 60)
        alert = _intent(subscription.id, "i-alert", PostKind.ALERT, NOW)
        async with raw.begin() as taking_over:
            await taking_over.execute(
                text("UPDATE subscriptions SET lease_owner = 'worker-b' WHERE id = :id"),
                {"id": subscription.id},
            )
            recording = asyncio.create_task(store.record_intent(alert, "worker-a"))
            await asyncio.sleep(0.3)
            assert not recording.done()  # waits for the claim in progress
        assert not await recording
        assert await store.open_intents([subscription.id]) == {subscription.id: []}


async def test_claims_meeting_on_the_same_rows_in_opposite_orders_both_end_well(
    database_url: str,
) -> None:
    """PostgreSQL: `digest --once --all` scans the table in its order, a worker's tick walks
    the due-time index; each having locked a row the other wants (held here by a third
    transaction until both wait), neither fails: one claims what the other has not, no row
    twice. A bare UPDATE deadlocked, and one of them failed as "database unavailable"."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: nothing runs in between")
    async with (
        await Store.open(database_url) as every,
        await Store.open(database_url) as due,
        raw_engine(database_url) as raw,
    ):
        order = [("CX", -1), ("CW1", 24 * 3600), ("CY", -3), ("CW2", -2)]  # due: CY, CW2, CX
        made = {
            channel: await subscribe(every, channel=channel, next_run_at=NOW + timedelta(seconds=s))
            for channel, s in order
        }
        async with raw.begin() as filling:  # 2,000 not due: the tick's plan takes the index
            await filling.execute(
                text(
                    "INSERT INTO subscriptions (channel_id, algorithm, schedule, timezone,"
                    " created_by, created_at, next_run_at, consecutive_failures,"
                    " outage_notified, notify, min_count)"
                    " SELECT 'CF' || n, algorithm, schedule, timezone, created_by, created_at,"
                    " next_run_at + interval '2 days', 0, false, notify, min_count"
                    " FROM subscriptions, generate_series(1, 2000) AS n WHERE id = :id"
                ),
                {"id": made["CX"].id},
            )
            await filling.execute(text("ANALYZE subscriptions"))
        async with raw.begin() as holding:
            await holding.execute(
                text("SELECT 1 FROM subscriptions WHERE id IN (:a, :b) FOR UPDATE"),
                {"a": made["CW1"].id, "b": made["CW2"].id},
            )
            everything = asyncio.create_task(every.claim_due("w-all", NOW, 60, everything=True))
            await asyncio.sleep(0.3)
            ticking = asyncio.create_task(due.claim_due("w-tick", NOW, 60))
            await asyncio.sleep(0.3)
        claimed = [{s.id for s in await everything}, {s.id for s in await ticking}]
        assert not claimed[0] & claimed[1]
        assert claimed[0] | claimed[1] >= {made["CX"].id, made["CY"].id}
        # A row held by another transaction then is the next tick's.
        later = await due.claim_due("w-next", NOW + timedelta(seconds=61), 60)
        assert made["CW2"].id in {s.id for s in later}


async def test_runs_ending_as_one_subscription_is_removed_end_the_others(
    database_url: str,
) -> None:
    """PostgreSQL: a run ends (lease lost) while its subscription is being removed, beside a
    run whose lease is still held: nothing is recorded of the removed one, and the other ends
    (its lease given back, its next run set). The foreign key's own check failed the whole
    transaction once the removal committed."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time: nothing runs in between")
    async with await Store.open(database_url) as store, raw_engine(database_url) as raw:
        gone = await subscribe(store, channel="C-gone")
        kept = await subscribe(store, channel="C-kept")
        assert len(await store.claim_due("w1", NOW, 60)) == 2
        later = NOW + timedelta(minutes=15)
        runs = [
            FinishedRun(DigestRun(gone.id, NOW, NOW, RunOutcome.LEASE_LOST, 0, None), later, False),
            FinishedRun(DigestRun(kept.id, NOW, NOW, RunOutcome.OK, 1, None), later, True),
        ]
        async with raw.begin() as removing:
            removal = text("DELETE FROM subscriptions WHERE id = :id")
            await removing.execute(removal, {"id": gone.id})
            finishing = asyncio.create_task(store.finish_runs("w1", runs))
            await asyncio.sleep(0.3)
            assert not finishing.done()  # waits for the removal in progress
        await finishing
        assert len(await store.recent_digest_runs(kept.id, 5)) == 1
        async with raw.connect() as connection:
            lease = await connection.execute(
                text("SELECT lease_owner, next_run_at FROM subscriptions WHERE id = :id"),
                {"id": kept.id},
            )
            assert lease.one() == (None, later)


@pytest.mark.parametrize("action", [AlertAction.TAKE, AlertAction.RESOLVE, AlertAction.MUTE])
async def test_clicks_at_the_same_moment_change_an_alert_once(
    store: Store, action: AlertAction
) -> None:
    """One person clicks five times at once (a slow connection): one click changes the
    alert, the others are told it changed; none is written over another (nor told twice in
    the thread)."""
    thread = alert_thread()
    await store.create_alert_thread(thread)
    ref = AlertRef.of(thread)
    changes = await asyncio.gather(
        *(
            change_alert(store, CHANNEL, ref, action=action, user="U1", now=NOW, mute="1h")
            for _ in range(5)
        )
    )
    won = [c for c in changes if c.refused is None]
    assert len(won) == 1
    assert all(c.refused for c in changes if c is not won[0])
    (stored,) = await store.alert_threads(CHANNEL, ALGORITHM, [thread.fingerprint])
    assert won[0].thread is not None
    assert (stored.owner, stored.state) == (won[0].thread.owner, won[0].thread.state)


async def test_a_mute_ending_does_not_undo_a_click_made_meanwhile(store: Store) -> None:
    """A run read the alert muted and its mute over; a resolve landed before the run wrote:
    the resolve stands."""
    muted = alert_thread(state=AlertState.MUTED, muted_until=NOW - timedelta(minutes=1))
    await store.create_alert_thread(muted)
    resolved = replace(muted, state=AlertState.RESOLVED, muted_until=None, state_changed_by="U1")
    assert await store.update_alert_thread(resolved, fields=ALERT_STATE, expected=muted)
    reopened = replace(muted, state=AlertState.OPEN, muted_until=None)
    assert not await store.update_alert_thread(reopened, fields=ALERT_STATE, expected=muted)
    (stored,) = await store.alert_threads(CHANNEL, ALGORITHM, [muted.fingerprint])
    assert (stored.state, stored.state_changed_by) == (AlertState.RESOLVED, "U1")


@pytest.mark.parametrize("off_s", [60, -60])
async def test_a_replica_whose_clock_is_off_claims_nothing(
    database_url: str, monkeypatch: pytest.MonkeyPatch, off_s: int
) -> None:
    """PostgreSQL (replicas on several hosts): leases are written and judged on each
    replica's clock, so one whose clock is a minute off would take a lease still held (or
    write ones already run out) and an alert would be posted twice. It claims nothing and
    says why; once its clock is right it claims again."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's processes share one host, and so one clock")
    real = engine_module.wall_clock
    async with await Store.open(database_url) as store:
        await subscribe(store)
        monkeypatch.setattr(engine_module, "wall_clock", lambda: real() + timedelta(seconds=off_s))
        with pytest.raises(ClockSkewed, match=f"60 s {'ahead of' if off_s > 0 else 'behind'}"):
            await store.claim_due("w1", NOW, 45)
        monkeypatch.setattr(engine_module, "wall_clock", real)
        assert len(await store.claim_due("w1", NOW, 45)) == 1


# The Home tab and the on-call fields ----------------------------------------------------


async def test_home_alerts_are_the_users_channels_own_first_then_open_newest_first(
    store: Store,
) -> None:
    def at(fingerprint: str, minutes: int, **changes: Any) -> AlertThread:
        return alert_thread(
            fingerprint, last_seen_ms=1_767_225_600_000 + minutes * 60_000, **changes
        )

    threads = [
        at("open-old", 1),
        at("open-new", 5),
        at("regressed", 3, state=AlertState.REGRESSED),
        at("muted-mine", 2, state=AlertState.MUTED, owner=USER, owner_since=NOW),
        at("muted", 9, state=AlertState.MUTED),
        at("resolved-mine", 9, state=AlertState.RESOLVED, owner=USER, owner_since=NOW),
        at("elsewhere", 9, channel_id="C0OTHER"),
        at("unposted", 9, parent_ts=""),  # its alert is not in Slack yet
    ]
    for thread in threads:
        assert await store.create_alert_thread(thread)
    shown, total = await store.home_alerts(USER, [CHANNEL], 40)
    assert [t.fingerprint for t in shown] == ["muted-mine", "open-new", "regressed", "open-old"]
    assert total == 4
    assert shown[0].owner == USER
    assert shown[0].owner_since == NOW
    first, total = await store.home_alerts(USER, [CHANNEL], 2)
    assert ([t.fingerprint for t in first], total) == (["muted-mine", "open-new"], 4)
    assert await store.home_alerts(USER, [], 40) == ([], 0)


async def test_a_subscription_keeps_its_notify_list_and_threshold(store: Store) -> None:
    made = await store.upsert_subscription(
        CHANNEL, ALGORITHM, "every:15m", "UTC", USER, NOW, NOW, notify=("U1", "S2"), min_count=3
    )
    assert (made.notify, made.min_count) == (("U1", "S2"), 3)
    (listed,) = await store.channel_subscriptions(CHANNEL)
    assert (listed.notify, listed.min_count) == (("U1", "S2"), 3)
    again = await store.upsert_subscription(CHANNEL, ALGORITHM, "every:1h", "UTC", USER, NOW, NOW)
    assert (again.id, again.notify, again.min_count) == (made.id, (), 1)  # what the caller passes


async def test_downgrading_the_on_call_columns_keeps_every_subscriptions_records(
    tmp_path: Path,
) -> None:
    """SQLite with foreign keys on, as the store runs it: a table copy of `subscriptions`
    would cascade to their reported records."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    async with await Store.open(url) as store:
        made = await subscribe(store)
        await store.mark_reported(made.id, [("req-1", 1), ("req-2", 2)], NOW)
    engine = create_engine(url)
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys = ON"))
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
            columns = {c["name"] for c in inspect(connection).get_columns("subscriptions")}
            reported = connection.exec_driver_sql("SELECT COUNT(*) FROM reported_records")
            assert reported.scalar_one() == 2
        assert "min_count" not in columns
    finally:
        engine.dispose()
    async with await Store.open(url) as store:  # and up again
        (again,) = await store.channel_subscriptions(CHANNEL)
        assert (again.id, again.notify, again.min_count) == (made.id, (), 1)


def test_subscription_rows_are_read_by_position_in_the_dataclass_field_order() -> None:
    # `subscription_of` builds a Subscription from a row's values in order: a column added to
    # one and not the other, or moved, must not shift every value into the wrong field.
    assert [column.name for column in SUBSCRIPTION_COLUMNS] == [
        field.name for field in fields(Subscription)
    ]


@pytest.mark.parametrize(
    ("url", "before", "after"),
    [
        ("sqlite:///{tmp}/bot.db", 0.005, engine_module.SQLITE_SWITCH_INTERVAL_S),
        ("sqlite:///{tmp}/bot.db", 0.0001, 0.0001),  # a shorter one set by someone: kept
        ("postgresql://postgres@127.0.0.1:5432/test", 0.005, 0.005),  # asyncpg: no thread
    ],
)
async def test_a_sqlite_process_asks_for_the_gil_back_sooner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, before: float, after: float
) -> None:
    # sqlite3 waits for the GIL at every row; the event loop's thread keeps it for the whole
    # switch interval (5 ms by default) unless asked sooner.
    interval = [before]
    monkeypatch.setattr(engine_module.sys, "getswitchinterval", lambda: interval[0])
    monkeypatch.setattr(engine_module.sys, "setswitchinterval", partial(interval.__setitem__, 0))
    store = Store.connect_later(url.format(tmp=tmp_path))  # connects at first use: not here
    try:
        engine_module.share_the_gil_with_sqlite(store.database)
    finally:
        await store.close()
    assert interval == [after]


async def test_a_database_that_takes_the_connection_and_never_answers_is_unavailable_soon(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not after asyncpg's 60 s: a start, a command needing the store and the readiness probe
    are held no longer than the connect timeout, and the cause is said."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()
        finally:
            writer.close()

    hole = await asyncio.start_server(hold, "127.0.0.1", 0)
    monkeypatch.setattr(engine_module, "CONNECT_TIMEOUT_S", 0.5)
    port = hole.sockets[0].getsockname()[1]
    store = Store.connect_later(f"postgresql://postgres@127.0.0.1:{port}/test")
    started = time.monotonic()
    try:
        with pytest.raises(
            StoreUnavailable, match=r"^database unavailable: no answer within 0.5 s$"
        ):
            await store.database.migrate()
        assert time.monotonic() - started < 5
    finally:
        await store.close()
        hole.close()
        await asyncio.sleep(0.1)
