"""A digest run: each due subscription claimed, each algorithm fetched once,
each new kind of error alerted once, and a record counted as reported only after Slack
confirmed its post. One failing algorithm or channel never stops the others.

What the cluster cannot answer counts toward the "cluster unreachable" notice; a bug of ours
never does: it ends that subscription's run as `RunOutcome.ERROR`, logged with its traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from structlog.contextvars import bind_contextvars, reset_contextvars

from bot.domain.alerts import (
    ALERT_STATE,
    AlertThread,
    DigestRun,
    FinishedRun,
    NoticeKind,
    PendingNotice,
    PostIntent,
    RunOutcome,
    Subscription,
    mute_expired,
)
from bot.domain.algorithm_ref import parse_algorithm_ref
from bot.domain.schedule import next_run, parse_schedule
from bot.errors.records import RecordBatch
from bot.store.exceptions import StoreUnavailable
from bot.usecases.alert_posts import Posting
from bot.usecases.digest_ports import (
    AlertNotifier,
    ChannelGone,
    DigestStore,
    LeaseLost,
    PostFailed,
)
from bot.usecases.query import ErrorSource, fetch_errors
from bot.usecases.results import LookupFailure
from bot.usecases.turns import CpuTurns

log = logging.getLogger(__name__)

OUTAGE_NOTICE_AFTER = 3
"""Failed runs in a row before the channel hears that the cluster is unreachable."""
RETRY_BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15))
"""When a run could not reach the cluster: retried at the next ticks, backing off."""
REPORTED_KEPT = timedelta(days=8)
"""The API's 7-day window plus a day: older reported ids can never come back."""
RUNS_KEPT = timedelta(days=30)
"""How long a digest run's record is kept (diagnosis), so storage stays bounded."""
LEASE_SECONDS = 45.0
"""A run's hold on its subscriptions, renewed by a heartbeat while it works: a run whose
process died leaves them to the next worker's tick within about a minute."""


@dataclass
class DigestReport:
    """What one run did, for `digest --once` (exit 1 when anything failed) and logs."""

    ran: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    """Subscription id → why (cluster unreachable, channel gone, an unexpected error)."""
    posted: int = 0
    error: str | None = None
    """Why the run as a whole could not happen (the database did not answer)."""
    outcomes: dict[str, int] = field(default_factory=dict)
    """How many subscriptions' runs ended how, for `algo_errors_digest_runs_total`: `ok`,
    `cluster_failed`, `slack_failed`, `storage_failed` or `error`."""

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


def retry_at(failures: int, now: datetime) -> datetime:
    """When a run that could not reach the cluster is tried again (`failures` so far)."""
    return now + RETRY_BACKOFF[min(failures, len(RETRY_BACKOFF) - 1)]


async def run_digests(
    store: DigestStore,
    source: ErrorSource,
    notifier: AlertNotifier,
    *,
    now: datetime,
    worker: str,
    everything: bool = False,
    concurrency: int = 8,
    lease_seconds: float = LEASE_SECONDS,
    stopping: Callable[[], bool] = lambda: False,
    turns: CpuTurns | None = None,
) -> DigestReport:
    """Run every due subscription once (`everything`: all of them, due or not).

    Once `stopping()` (the process got SIGTERM), nothing more is posted: each subscription's
    run ends before its next post, releasing its lease, and what it did not post is left to
    the next run (of any worker) a minute later.

    Reading a subscription's new records waits for a turn (`turns`, the process's: a serving
    process answers its requests between two; without, the run has its own).

    Each algorithm is fetched once, at most `concurrency` at a time, and its subscriptions run
    as soon as its records arrive, beside the fetches; one channel's subscriptions run one
    after the other, so its posts never interleave.
    """
    # Made before the claim: the run counts its leases as held from a moment no later than it
    # (its first posts are guarded by that alone, until the heartbeat renews them).
    lease = _Lease(store, worker, timedelta(seconds=lease_seconds), now, stopping)
    claimed = await store.claim_due(worker, now, lease_seconds, everything=everything)
    report = DigestReport()
    if not claimed:  # a tick with none due: that one statement
        return report
    turns = turns or CpuTurns()
    finished: dict[int, FinishedRun] = {}
    running = [s.id for s in claimed]
    heartbeat = asyncio.create_task(  # from the claim on: the reads below may take a while
        lease.keep_alive(lambda: [sid for sid in running if sid not in finished])
    )
    by_algorithm: dict[str, list[Subscription]] = defaultdict(list)
    for subscription in claimed:
        by_algorithm[subscription.algorithm].append(subscription)
    reported = _ReportedWindows(store, list(by_algorithm.values()))
    try:
        await reported.first()
        intents = await store.open_intents([s.id for s in claimed])
        mutes_over: dict[tuple[str, str], list[AlertThread]] = defaultdict(list)
        for thread in await store.expired_mutes(now):
            mutes_over[thread.channel_id, thread.algorithm].append(thread)
    except BaseException:
        await _stopped(heartbeat)
        await store.finish_runs(worker, [])  # nothing ran; the leases expire
        raise
    channel_turns: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    to_fetch = iter(list(by_algorithm.items()))
    posting: set[asyncio.Task[None]] = set()
    backlog = asyncio.Semaphore(POSTING_BACKLOG * concurrency)

    def failed(algorithm: str, subscriptions: list[Subscription], error: Exception) -> None:
        """A bug, or a store failure, outside a subscription's own run."""
        if isinstance(error, StoreUnavailable):  # not a bug: one line, tried at next ticks
            log.warning("digest of %s stopped: %s", algorithm, error)
        else:
            log.error("digest of %s failed", algorithm, exc_info=error)
        for subscription in subscriptions:
            if subscription.id not in finished:
                finished[subscription.id] = _failed_by_bug(subscription, error, now)
                report.failed[subscription.id] = _where(subscription, _described(error))
                report.count(_kind_of_failure(error))

    async def fetcher() -> None:
        """One of `concurrency` fetchers taking the algorithms in turn; each algorithm's
        subscriptions then run in a task of their own, so fetching never waits on posting."""
        for algorithm, subscriptions in to_fetch:
            if stopping():  # the process is stopping: the rest is left to the next run
                return
            await backlog.acquire()
            try:
                reported.read_ahead(algorithm)
                try:
                    with _Bound(algorithm=algorithm):
                        batch: RecordBatch | LookupFailure = await fetch_errors(
                            source, parse_algorithm_ref(algorithm)
                        )
                except LookupFailure as lookup:
                    batch = lookup
            except Exception as error:
                backlog.release()
                failed(algorithm, subscriptions, error)
                algorithm_done(algorithm)
                continue
            except BaseException:
                backlog.release()
                raise
            task = asyncio.create_task(post(algorithm, subscriptions, batch))
            posting.add(task)
            task.add_done_callback(posting.discard)
            del batch  # the task's now: not held through the next fetch too

    async def post(
        algorithm: str, subscriptions: list[Subscription], batch: RecordBatch | LookupFailure
    ) -> None:
        try:
            ids = frozenset() if isinstance(batch, LookupFailure) else batch.request_ids
            seen = await reported.of(algorithm)
            fresh = {s.id: set(ids - seen[s.id]) for s in subscriptions}
            batch = _only_needed(batch, fresh, intents)
            if not isinstance(batch, LookupFailure):  # of the records that are well formed
                fresh = {sid: unreported & batch.request_ids for sid, unreported in fresh.items()}
            for subscription in subscriptions:
                async with channel_turns[subscription.channel_id]:
                    with _Bound(
                        subscription=subscription.id, algorithm=algorithm,
                        channel=subscription.channel_id,
                    ):  # fmt: skip
                        finished[subscription.id] = await _run_one(
                            store, notifier, subscription, batch, fresh[subscription.id],
                            now=now, report=report, lease=lease,
                            intents=intents[subscription.id],
                            mutes_over=mutes_over[subscription.channel_id, algorithm],
                            turns=turns,
                        )  # fmt: skip
        except Exception as error:
            failed(algorithm, subscriptions, error)
        finally:
            backlog.release()
        algorithm_done(algorithm)

    ended: set[int] = set()
    window_ends: set[asyncio.Task[None]] = set()

    def algorithm_done(algorithm: str) -> None:
        """Once every algorithm of a window is done, its subscriptions' runs end (leases, next
        runs, runs recorded): a few statements for the window, made while the next windows are
        fetched rather than all after the last answer, in a task of its own that nothing
        cancels (the run's end waits for it, then ends whatever is left, once)."""
        window = reported.done(algorithm)
        if window:
            runs = [finished[sid] for sid in window if sid in finished]
            window_ends.add(asyncio.create_task(end_window(runs)))

    async def end_window(runs: list[FinishedRun]) -> None:
        try:
            await store.finish_runs(worker, runs)
        except Exception as error:  # a database that stopped answering, a bug: the end retries
            log.warning("ending the runs of a window failed (the run's end tries again): %s", error)
        else:
            ended.update(run.run.subscription_id for run in runs)

    try:
        await asyncio.gather(*(fetcher() for _ in range(min(concurrency, len(by_algorithm)))))
        await asyncio.gather(*posting)
    finally:  # what no window ended: leases end, next runs set, runs recorded
        left = list(posting)
        for task in left:  # the run was cut short (a shutdown) or a fetcher failed
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        reported.close()
        await asyncio.gather(*window_ends)  # each catches what it does not end
        await _stopped(heartbeat)
        await store.finish_runs(worker, [f for sid, f in finished.items() if sid not in ended])
    await store.prune_reported(int((now - REPORTED_KEPT).timestamp() * 1000))
    await store.prune_digest_runs(now - RUNS_KEPT)
    return report


class _Bound:
    """Values bound to the log lines of a block (structlog's `bound_contextvars`, without its
    copy of the whole context: a run binds once per algorithm and per subscription), and what
    they were before restored after it."""

    __slots__ = ("_tokens", "_values")

    def __init__(self, **values: object) -> None:
        self._values = values

    def __enter__(self) -> None:
        self._tokens = bind_contextvars(**self._values)

    def __exit__(self, *_: object) -> None:
        reset_contextvars(**self._tokens)


async def _stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _only_needed(
    batch: RecordBatch | LookupFailure,
    fresh: dict[int, set[str]],
    intents: dict[int, list[PostIntent]],
) -> RecordBatch | LookupFailure:
    """The records some subscription has not reported or an open intent names, the others let
    go at once: while a channel's turn comes, a run with nothing new holds no records, and
    decodes none of a response read lazily (`read_lazily`)."""
    if isinstance(batch, LookupFailure):
        return batch
    needed: set[str] = set()
    for subscription_id, unreported in fresh.items():
        needed |= unreported
        for intent in intents[subscription_id]:
            needed.update(intent.request_ids)
    if not needed:
        return RecordBatch()
    return RecordBatch(r for r in batch.records if r.request_id in needed)


def _where(subscription: Subscription, detail: str | None) -> str:
    """A failure as `digest --once` and the logs name it."""
    return f"{subscription.algorithm} in {subscription.channel_id}: {detail}"


def _kind_of_failure(error: BaseException) -> str:
    """The `algo_errors_digest_runs_total` outcome of a run that raised `error`."""
    if isinstance(error, PostFailed):
        return "slack_failed"
    if isinstance(error, StoreUnavailable):
        return "storage_failed"
    return "error"


def _described(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _failed_by_bug(subscription: Subscription, error: Exception, now: datetime) -> FinishedRun:
    """A run that failed outside the subscription's own run: tried again after the longest
    backoff (at the next ticks when the database did not answer), not counted as an outage."""
    run = DigestRun(subscription.id, now, datetime.now(UTC), RunOutcome.ERROR, 0, _described(error))
    failures = 0 if isinstance(error, StoreUnavailable) else len(RETRY_BACKOFF)
    return FinishedRun(run, retry_at(failures, now), succeeded=True)


async def _run_one(
    store: DigestStore,
    notifier: AlertNotifier,
    subscription: Subscription,
    batch: RecordBatch | LookupFailure,
    fresh: set[str],
    *,
    now: datetime,
    report: DigestReport,
    lease: _Lease,
    intents: Sequence[PostIntent] = (),
    mutes_over: Sequence[AlertThread] = (),
    turns: CpuTurns,
) -> FinishedRun:
    """One subscription's run (`fresh`: the request ids it has not reported); whatever
    happens, it ends in a `FinishedRun` that releases its lease."""
    outcome, detail, posted = RunOutcome.OK, None, 0
    counted = "ok"  # the label of algo_errors_digest_runs_total
    next_run_at = retry_at(subscription.consecutive_failures, now)
    try:
        next_run_at = next_run(parse_schedule(subscription.schedule), subscription.timezone, now)
        told = subscription.outage_notified
        if subscription.pending_notice is not None:  # an earlier run's, unconfirmed
            told = await _settle_notice(
                store, notifier, subscription, subscription.pending_notice, lease
            )
        if isinstance(batch, LookupFailure):
            outcome, detail = RunOutcome.CLUSTER_FAILED, str(batch)
            next_run_at = min(next_run_at, retry_at(subscription.consecutive_failures, now))
            if subscription.consecutive_failures + 1 >= OUTAGE_NOTICE_AFTER and not told:
                failure = batch
                await _notice(
                    store, subscription, lease, NoticeKind.OUTAGE,
                    lambda notice_id: notifier.outage(subscription, failure, notice_id),
                )  # fmt: skip
        else:
            if told:
                await _notice(
                    store, subscription, lease, NoticeKind.RECOVERED,
                    lambda notice_id: notifier.recovered(subscription, notice_id),
                )  # fmt: skip
            if fresh or intents or mutes_over:  # else nothing to post: no lease to hold
                posting = Posting(
                    store, notifier, subscription, batch, now, lease.of(subscription.id),
                    lease.clock, fresh, turns=turns,
                )  # fmt: skip
                async with lease.held(subscription.id):
                    await posting.settle_open(intents)
                    await _end_mutes(store, notifier, subscription, mutes_over, lease, now)
                    posted = await posting.report_new()
                if posting.unconfirmed:  # what Slack did not take is tried at the next ticks
                    next_run_at = min(next_run_at, retry_at(0, now))
                    counted = "slack_failed"
    except (LeaseExpiring, DigestStopping) as cut:
        outcome, detail = RunOutcome.LEASE_LOST, str(cut)
        next_run_at = min(next_run_at, retry_at(0, now))  # whoever holds it next settles it
        # A shutdown's stop is no failure: the next run of any worker carries on.
        counted = "storage_failed" if isinstance(cut, LeaseExpiring) else "ok"
    except LeaseLost:
        outcome, detail = RunOutcome.LEASE_LOST, "another worker took over, or it was unsubscribed"
    except ChannelGone as gone:
        outcome, detail, counted = RunOutcome.PAUSED, gone.reason, "slack_failed"
        await store.pause(subscription.id, gone.reason)
    except (PostFailed, StoreUnavailable) as error:  # not a bug: one line, tried at next ticks
        log.warning(
            "digest of %s in %s stopped: %s", subscription.algorithm, subscription.channel_id, error
        )
        outcome, detail, counted = RunOutcome.ERROR, str(error), _kind_of_failure(error)
        next_run_at = min(next_run_at, retry_at(0, now))
    except Exception as error:  # the edge of one subscription's run: the others go on
        log.exception("digest of %s in %s failed", subscription.algorithm, subscription.channel_id)
        outcome, detail, counted = RunOutcome.ERROR, _described(error), "error"
        # What could not be posted is tried again at the next ticks, not a schedule later.
        next_run_at = min(next_run_at, retry_at(0, now))
    if outcome is RunOutcome.CLUSTER_FAILED:
        counted = "cluster_failed"
    report.count(counted)
    report.posted += posted
    if outcome in (RunOutcome.OK, RunOutcome.LEASE_LOST):
        report.ran.append(subscription.id)
    else:
        report.failed[subscription.id] = _where(subscription, detail)
        if outcome is not RunOutcome.ERROR:  # a bug was logged above, with its traceback
            log.warning("digest failed: %s", report.failed[subscription.id])
    log.debug("subscription digested", extra={"outcome": outcome.value, "posted": posted})
    run = DigestRun(subscription.id, now, datetime.now(UTC), outcome, posted, detail)
    # Consecutive failures count cluster outages only (a Slack refusal or a bug is not one),
    # also when telling of the outage failed.
    return FinishedRun(run, next_run_at, succeeded=not isinstance(batch, LookupFailure))


async def _notice(
    store: DigestStore,
    subscription: Subscription,
    lease: _Lease,
    kind: NoticeKind,
    post: Callable[[str], Awaitable[None]],
) -> None:
    """Tell the channel of its cluster's outage or recovery once: the notice is stored before
    it is sent (only while the lease is held: the statement checks it) and settled once Slack
    confirmed it, so a crash between the two is found out by the next run (`_settle_notice`)."""
    lease.check()  # a notice is a post like the others: none once the process is stopping
    notice = PendingNotice(kind, uuid.uuid4().hex, lease.clock())
    async with lease.held(subscription.id):
        if not await store.record_notice(subscription.id, notice, lease.worker):
            raise LeaseLost
        await post(notice.id)
    await store.settle_notice(subscription.id, notice, outage_notified=kind is NoticeKind.OUTAGE)


async def _settle_notice(
    store: DigestStore,
    notifier: AlertNotifier,
    subscription: Subscription,
    notice: PendingNotice,
    lease: _Lease,
) -> bool:
    """A notice an earlier run stored and did not confirm (it died between): found in the
    channel, it counts as told; else it was never sent, and this run tells it if it still
    applies. Whether the channel now knows of an outage.

    (While a previous release, which does not read pending notices, runs beside this one in a
    rolling upgrade, it may tell the channel again what such a notice told.)"""
    lease.check()
    async with lease.held(subscription.id):
        found = await notifier.find_notice(subscription.channel_id, notice)
    told = (notice.kind is NoticeKind.OUTAGE) if found else subscription.outage_notified
    await store.settle_notice(subscription.id, notice, outage_notified=told)
    return told


POSTING_BACKLOG = 4
"""Algorithms whose subscriptions may wait to post, per fetcher: fetching goes on while a
channel's posts wait their turn, but no further (what they hold stays bounded)."""
REPORTED_WINDOW = 500
"""Subscriptions whose reported request ids a run holds at once (a window; the next one is
read ahead): a run over 10,000 subscriptions never holds the ids of them all."""


class _ReportedWindows:
    """The request ids each claimed subscription reported, read a window of about
    `REPORTED_WINDOW` subscriptions at a time (one statement per 500 ids): a window is read
    when its first algorithm is fetched, the next one then too, and dropped once all of its
    algorithms are done. The algorithms are fetched in the order given, so the windows are
    needed in that order."""

    def __init__(self, store: DigestStore, groups: Sequence[Sequence[Subscription]]) -> None:
        self._store = store
        self._window_of: dict[str, int] = {}
        self._members: list[list[int]] = [[]]
        self._left: list[int] = [0]
        for group in groups:
            if self._members[-1] and len(self._members[-1]) + len(group) > REPORTED_WINDOW:
                self._members.append([])
                self._left.append(0)
            self._window_of[group[0].algorithm] = len(self._members) - 1
            self._members[-1].extend(s.id for s in group)
            self._left[-1] += 1
        self._reads: dict[int, asyncio.Future[dict[int, frozenset[str]]]] = {}

    async def first(self) -> None:
        """Read the first window now (a database that does not answer stops the run before
        anything ran)."""
        self._read(0)
        await self._reads[0]

    def read_ahead(self, algorithm: str) -> None:
        window = self._window_of[algorithm]
        self._read(window)
        self._read(window + 1)

    async def of(self, algorithm: str) -> dict[int, frozenset[str]]:
        window = self._window_of[algorithm]
        self._read(window)
        return await asyncio.shield(self._reads[window])

    def done(self, algorithm: str) -> Sequence[int]:
        """`algorithm` is done; when it was its window's last, the window's subscriptions
        (else none)."""
        window = self._window_of[algorithm]
        self._left[window] -= 1
        if self._left[window] != 0:
            return ()
        read = self._reads.pop(window, None)
        if read is not None and not read.done():
            read.cancel()
        return self._members[window]

    def close(self) -> None:
        """The run is over (or cut short): no read goes on after it."""
        for read in self._reads.values():
            read.cancel()
        self._reads.clear()

    def _read(self, window: int) -> None:
        if window in self._reads or window >= len(self._members) or self._left[window] == 0:
            return
        read = asyncio.ensure_future(self._store.reported_by_subscription(self._members[window]))
        read.add_done_callback(_retrieved)
        self._reads[window] = read


def _retrieved(read: asyncio.Future[dict[int, frozenset[str]]]) -> None:
    """A read ahead that failed and that no one awaited is not an unretrieved exception."""
    if not read.cancelled():
        read.exception()


class LeaseExpiring(LeaseLost):
    """The leases could not be renewed (the database did not answer) and are about to run
    out: the run stops posting before another worker may take its subscriptions over."""


class DigestStopping(LeaseLost):
    """The process is stopping: the run posts nothing more and ends, so its leases are
    released for the next run, of this worker or another."""


class _Lease:
    """Keeps a run's leases alive while it works (pacing and rate limits can make a run
    outlast one lease) and says, before each post, whether the run must stop: a post whose
    intent is recorded first has its lease checked by that intent (`record_intent`), any other
    renews its subscription's lease first.

    A run posts only while `held()`: if no renewal succeeded for most of a lease (the database
    is down), whatever it is doing (a post waiting its turn or a 429) is cancelled before the
    lease can run out, so a worker taking the subscription over never meets a post of this
    one arriving after it looked in Slack."""

    _MARGIN = 0.25
    """Of a lease, kept between the last moment a run may post and the lease's end."""

    def __init__(
        self,
        store: DigestStore,
        worker: str,
        length: timedelta,
        now: datetime,
        stopping: Callable[[], bool],
    ) -> None:
        self.worker = worker
        self._store, self._length = store, length
        self._stopping = stopping
        self._now, self._started = now, time.monotonic()
        self._guards: dict[asyncio.Timeout, int] = {}
        """Each `held()` block's guard, and whose lease it runs under."""
        self._lost: set[int] = set()
        """Subscriptions whose lease the heartbeat found gone (taken over, or removed)."""
        self._held_until = self._deadline(self._loop_time())

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    def _deadline(self, sent: float) -> float:
        """The event loop's time until which leases renewed by a statement sent at `sent` (the
        loop's time before it went: it may take a while to come back) are surely held."""
        return sent + self._length.total_seconds() * (1 - self._MARGIN)

    def _renewed(self, sent: float) -> None:
        deadline = self._deadline(sent)
        if deadline <= self._held_until:
            return
        self._held_until = deadline
        for guard, subscription_id in self._guards.items():
            # One expiring now cannot be moved: its block is cut (a lost one is cut anyway).
            if not guard.expired() and subscription_id not in self._lost:
                guard.reschedule(deadline)

    def _lose(self, subscription_ids: set[int]) -> None:
        """The heartbeat found these leases gone: what their runs post, or wait to post (a
        429, the channel's pace), is cut now, not at the guard's deadline (a worker whose
        clock is off may have taken a lease this one still counted as held)."""
        self._lost |= subscription_ids
        now = self._loop_time()
        for guard, subscription_id in self._guards.items():
            if subscription_id in subscription_ids and not guard.expired():
                guard.reschedule(now)

    @contextlib.asynccontextmanager
    async def held(self, subscription_id: int) -> AsyncIterator[None]:
        """Run the block only while the subscription's lease is surely held (see the class):
        `LeaseExpiring` when no renewal came in time, `LeaseLost` when the heartbeat found it
        gone."""
        if subscription_id in self._lost:
            raise LeaseLost
        guard = asyncio.timeout_at(self._held_until)  # a time of the loop, not a delay
        try:
            async with guard:
                self._guards[guard] = subscription_id
                try:
                    yield
                finally:
                    del self._guards[guard]
        except TimeoutError as error:
            if guard.expired():
                if subscription_id in self._lost:
                    raise LeaseLost from error
                raise LeaseExpiring(
                    "the digest leases could not be renewed; stopped before they ran out"
                ) from error
            raise

    def clock(self) -> datetime:
        """The run's own clock: `now` when it claimed, plus the time it has taken."""
        return self._now + timedelta(seconds=time.monotonic() - self._started)

    def _until(self) -> datetime:
        return self.clock() + self._length

    def check(self) -> None:
        """Before each post, without a statement: raises `DigestStopping` once the process is
        stopping."""
        if self._stopping():
            raise DigestStopping("the process is stopping: the rest is left to the next run")

    async def renew(self, subscription_id: int) -> None:
        """Before a post that records no intent first (an intent checks the lease itself):
        raises `LeaseLost` when the run must not post any more."""
        self.check()
        sent = self._loop_time()
        if not await self._store.renew_leases(self.worker, [subscription_id], self._until()):
            raise LeaseLost
        self._renewed(sent)

    def of(self, subscription_id: int) -> _SubscriptionLease:
        """The lease of one subscription, as its `Posting` uses it."""
        return _SubscriptionLease(self, subscription_id)

    async def keep_alive(self, still_running: Callable[[], list[int]]) -> None:
        """The heartbeat: every third of a lease, renew the leases of the runs not done yet.
        A renewal that failed is tried again after a fifteenth of a lease, not a third: posts
        with intents renew nothing themselves, so the guard's deadline rests on the beats."""
        beat = self._length.total_seconds() / 3
        wait = beat
        while True:
            await asyncio.sleep(wait)
            sent = self._loop_time()
            running = still_running()
            try:
                held = await self._store.renew_leases(self.worker, running, self._until())
            except StoreUnavailable as error:
                log.warning("could not renew the digest leases: %s", error)
                wait = beat / 5
            except Exception:  # a bug: logged, and the beat goes on (the runs need it)
                log.exception("renewing the digest leases failed")
                wait = beat / 5
            else:
                if lost := set(running) - held:
                    self._lose(lost)
                self._renewed(sent)
                wait = beat


@dataclass(frozen=True)
class _SubscriptionLease:
    """`_Lease` for one subscription (a `PostingLease`)."""

    lease: _Lease
    subscription_id: int

    @property
    def worker(self) -> str:
        return self.lease.worker

    def check(self) -> None:
        self.lease.check()

    async def renew(self) -> None:
        await self.lease.renew(self.subscription_id)


async def _end_mutes(
    store: DigestStore,
    notifier: AlertNotifier,
    subscription: Subscription,
    mutes_over: Sequence[AlertThread],
    lease: _Lease,
    now: datetime,
) -> None:
    """A mute ends by itself: the alerts whose mute ran out are open again, and say so.

    Each is shown first, then written: a process killed between the two, or a Slack that
    failed the edit for its own trouble, shows it again at a later run (an edit notifies
    nobody), where one written first would leave the alert saying it is muted for good.
    Written only if no click changed its state since it was read (a resolve, a new mute): then
    the click stands, and the alert is shown as it now is (the click's own edit may have come
    before this one)."""
    for thread in mutes_over:
        await lease.renew(subscription.id)
        opened = mute_expired(thread, now)
        if not await notifier.mute_over(opened):
            continue  # still muted, its mute over: the next run ends it
        if not await store.update_alert_thread(opened, fields=ALERT_STATE, expected=thread):
            found = await store.alert_threads(thread.channel_id, thread.algorithm,
                                              [thread.fingerprint])  # fmt: skip
            for current in found:
                if current.fingerprint == thread.fingerprint:  # not one adopted from its key
                    await notifier.refresh(current)
