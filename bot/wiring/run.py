"""The process's commands, composed from `build`: `serve`, the `digest` worker, one digest run,
and one lookup for `errors`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError, SlackClientError
from starlette.applications import Starlette
from structlog.contextvars import bound_contextvars

from bot.config import Settings
from bot.digest.ticker import DigestTicker
from bot.domain.commands import Query
from bot.slack.server import WebServer, create_web_app
from bot.store.exceptions import ClockSkewed, StoreUnavailable
from bot.store.repository import Store
from bot.usecases.digest import DigestReport, run_digests
from bot.usecases.query import run_query
from bot.usecases.results import QueryResult
from bot.wiring.build import (
    Bot,
    SlackUnreachable,
    StartupError,
    cancelled,
    check_slack_token,
    cluster_http,
    keep_signing_in,
    make_cluster_client,
    open_bot,
    open_store,
    require_slack,
    worker_name,
)
from bot.wiring.health import DatabaseWatch, gauges, readiness

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

log = logging.getLogger(__name__)

DRAIN_S = 20.0
"""On SIGTERM a process stops taking work and is gone within this many seconds (the
Kubernetes manifests' `terminationGracePeriodSeconds` is longer). Within it:"""
HTTP_DRAIN_S = 10.0
"""requests in flight when the server stops accepting get this long (uvicorn's graceful
shutdown), while"""
DIGEST_DRAIN_S = DRAIN_S - 5.0
"""a digest run in progress, which stops before its next post, may go on this long after the
signal; then it is cut short, leaving the rest to close connections."""
AFTER_ACK_DRAIN_S = DIGEST_DRAIN_S - HTTP_DRAIN_S
"""and the work commands and clicks do after their acks, once the server has stopped, at least
this long, and up to `DIGEST_DRAIN_S` after the signal (beside the digest run's wind-down)."""


@dataclass(frozen=True)
class DigestRunner:
    """One digest run with this process's collaborators: the very code path of the
    scheduler's tick, `digest --once` and the demo."""

    settings: Settings
    store: Store
    http: httpx.AsyncClient
    bot: Bot
    worker: str
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set on SIGTERM: a run in progress posts nothing more (see `run_digests`)."""

    async def __call__(self, *, everything: bool = False) -> DigestReport:
        metrics = self.bot.metrics
        finished = metrics.runs_digests()
        started = time.monotonic()
        with bound_contextvars(run=secrets.token_hex(4)):
            try:
                report = await run_digests(
                    self.store,
                    make_cluster_client(self.settings, self.http, metrics),
                    self.bot.notifier,
                    now=datetime.now(UTC),
                    worker=self.worker,
                    everything=everything,
                    concurrency=self.settings.cluster_concurrency,
                    stopping=self.stopping.is_set,
                    turns=self.bot.turns,
                )
            except StoreUnavailable as error:  # retried at the next tick; one line, no traceback
                log.warning("digest run skipped: %s", error)
                metrics.digest_runs.labels(outcome="storage_failed").inc()
                # The clock is this host's, not the database's fault: said as it is.
                said = str(error) if isinstance(error, ClockSkewed) else f"DATABASE_URL: {error}"
                return DigestReport(error=said)
            took = time.monotonic() - started
            if report.ran or report.failed:  # a tick with none due is no run to time
                metrics.digest_run_duration.observe(took)
            for outcome, runs in report.outcomes.items():
                metrics.digest_runs.labels(outcome=outcome).inc(runs)
            finished.set_to_current_time()
            _log_run(report, took)
        return report


def _log_run(report: DigestReport, seconds: float) -> None:
    """One line per digest run: INFO when it ran anything, DEBUG when nothing was due (a
    scheduler tick)."""
    level = logging.INFO if report.ran or report.failed else logging.DEBUG
    fields = {
        "outcome": "failed" if report.failed else "ok",
        "ran": len(report.ran), "failed": len(report.failed),
        "posted": report.posted, "duration_s": round(seconds, 3),
    }  # fmt: skip
    log.log(level, "digest run", extra=fields)


SIGN_IN_AT_START_S = 5.0
"""How long the sign-in at start may wait for Slack before the process serves anyway (and
goes on trying): a Slack that takes connections and never answers would otherwise hold
`/healthz` for the client's whole 30 s timeout."""


async def _signing_in(bot: Bot) -> asyncio.Task[None] | None:
    """Sign in to Slack now; when it does not answer, keep trying in the background (the
    task returned) while the process serves and `/readyz` says `slack`. A refused token is a
    `StartupError`."""
    try:
        async with asyncio.timeout(SIGN_IN_AT_START_S):
            await check_slack_token(bot)
    except TimeoutError:
        said = f"SLACK_API_URL: no answer from Slack within {SIGN_IN_AT_START_S:g} s"
        return asyncio.create_task(keep_signing_in(bot, SlackUnreachable(said)))
    except SlackUnreachable as error:
        return asyncio.create_task(keep_signing_in(bot, error))
    return None


def _stop_taking_work(digest: DigestRunner, ticker: DigestTicker | None) -> Callable[[], None]:
    """What the web server calls when it stops accepting (SIGTERM): no new digest run, and a
    run in progress posts nothing more."""

    def stop() -> None:
        if ticker is not None:
            ticker.stop_soon()
        digest.stopping.set()

    return stop


async def serve(settings: Settings, host: str, port: int, *, scheduler: bool = True) -> None:
    require_slack(settings, "serve")
    async with (
        cluster_http(settings.cluster_concurrency) as http,
        open_store(settings, keep_trying=True) as store,
        open_bot(settings, http, store) as bot,
    ):
        retrying = await _signing_in(bot)
        digest = DigestRunner(settings, store, http, bot, worker_name())
        ticker = DigestTicker(digest, settings.digest_tick_seconds) if scheduler else None
        stop_taking_work = _stop_taking_work(digest, ticker)
        stopped_at: list[float] = []

        def on_stop() -> None:
            stopped_at.append(time.monotonic())
            stop_taking_work()

        try:
            await _serving(
                _serve_slack(
                    settings, bot, DatabaseWatch(store), host, port, retrying, on_stop=on_stop
                ),
                retrying,
            )
        finally:
            await cancelled(retrying)
            # The work after the acks has gone on since the signal: it may go on until the
            # digest's own end (a server that stopped at once leaves it all that time, not
            # `AFTER_ACK_DRAIN_S` more: a query's answer cannot be resumed by another run).
            since = time.monotonic() - stopped_at[0] if stopped_at else HTTP_DRAIN_S
            await asyncio.gather(
                bot.after_ack.drain(max(AFTER_ACK_DRAIN_S, DIGEST_DRAIN_S - since)),
                *([ticker.stop(DIGEST_DRAIN_S)] if ticker is not None else []),
            )


class _SocketMode:
    """The Socket Mode connection, opened once Slack has signed the bot in (the process
    serves `/healthz` meanwhile, and `/readyz` says `socket`)."""

    def __init__(self, bot: Bot, app_token: str, signing_in: asyncio.Task[None] | None) -> None:
        self._bot, self._app_token, self._signing_in = bot, app_token, signing_in
        self._handler: AsyncSocketModeHandler | None = None

    async def connect(self) -> None:
        if self._signing_in is not None:
            await asyncio.wait([self._signing_in])  # a refusal ends the process (`_serving`)
        if not self._bot.authorization.signed_in:
            return
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        self._handler = AsyncSocketModeHandler(self._bot.bolt, app_token=self._app_token)
        try:
            await self._handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in slack-bolt
        except (SlackApiError, SlackClientError, aiohttp.ClientError, OSError) as error:
            log.error("cannot connect to Slack over Socket Mode: %s", error)
            return
        log.info("connected to Slack over Socket Mode")

    async def connected(self) -> bool:
        return self._handler is not None and bool(await self._handler.client.is_connected())

    async def close(self) -> None:
        if self._handler is not None:
            await self._handler.close_async()  # type: ignore[no-untyped-call]  # untyped in slack-bolt


async def _serving(serve: Awaitable[None], signing_in: asyncio.Task[None] | None) -> None:
    """Serve until stopped; but when Slack, unreachable at start, refuses the token once it
    answers, stop and raise that `StartupError`: a settings problem, as it is at start."""
    if signing_in is None:
        await serve
        return
    serving = asyncio.ensure_future(serve)
    try:
        await asyncio.wait([serving, signing_in], return_when=asyncio.FIRST_COMPLETED)
        if not serving.done() and not signing_in.cancelled():
            refused = signing_in.exception()
            if isinstance(refused, StartupError):
                raise refused
        await serving
    finally:
        if not serving.done():
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving


async def _serve_slack(
    settings: Settings,
    bot: Bot,
    database: DatabaseWatch,
    host: str,
    port: int,
    retrying: asyncio.Task[None] | None = None,
    *,
    on_stop: Callable[[], None] | None = None,
) -> None:
    """Serve from the start: `/healthz` answers while Slack or the database do not."""
    if settings.slack_app_token is None:
        web_app = create_web_app(
            bot.bolt,
            metrics=bot.metrics,
            gauges=gauges(database.store, bot.metrics),
            signing_secret=bot.signing_secret,
            readiness=readiness(
                database, slack=lambda: bot.authorization.signed_in, metrics=bot.metrics
            ),
        )
        await _serve_http(web_app, host, port, on_stop)
        return
    socket = _SocketMode(bot, settings.slack_app_token.get_secret_value(), retrying)
    connecting = asyncio.create_task(socket.connect())
    try:
        web_app = create_web_app(
            None,
            metrics=bot.metrics,
            gauges=gauges(database.store, bot.metrics),
            readiness=readiness(
                database, socket=socket.connected, slack=lambda: bot.authorization.signed_in,
                metrics=bot.metrics,
            ),
        )  # fmt: skip
        await _serve_http(web_app, host, port, on_stop)
    finally:
        await cancelled(connecting)
        await socket.close()


async def _serve_http(
    web_app: Starlette, host: str, port: int, on_stop: Callable[[], None] | None = None
) -> None:
    try:
        server = WebServer(web_app, host, port, graceful_s=HTTP_DRAIN_S, on_shutdown=on_stop)
    except OSError as error:  # in use, not an address of this host, no right to it
        reason = error.strerror or str(error)
        raise StartupError(f"PORT: cannot listen on {host}:{port} ({reason})") from None
    log.info("serving on %s:%s", host, server.port)
    with _start_up_frozen():
        await server.serve()


@contextlib.contextmanager
def _start_up_frozen() -> Iterator[None]:
    """What start-up built (modules, compiled patterns, schemas, the app: some 138,000
    objects) lives as long as the process: collected once, then left out of the collector's
    full passes (`gc.freeze`) while the block runs, each of which holds the event loop while
    it scans the heap (bench/README.md: the ack's p99; a digest run of 10,000 subscriptions,
    whose three full passes took 240-330 ms instead of 25-30). Collectable again after it
    (in-process tests serve and run often)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def digest_once(settings: Settings, *, everything: bool) -> DigestReport:
    """`digest --once [--all]`: one run."""
    require_slack(settings, "digest")
    async with (
        cluster_http(settings.cluster_concurrency) as http,
        open_store(settings) as store,
        open_bot(settings, http, store) as bot,
    ):
        await check_slack_token(bot)
        with _start_up_frozen():  # as a serving process does
            return await DigestRunner(settings, store, http, bot, worker_name())(
                everything=everything
            )


async def digest_worker(settings: Settings, host: str, port: int) -> None:
    """`digest`: the scheduler alone (a worker process), until SIGTERM or SIGINT. It serves
    `/healthz`, `/readyz` and `/metrics` on `host:port`, so it can be probed and scraped."""
    require_slack(settings, "digest")
    async with (
        cluster_http(settings.cluster_concurrency) as http,
        open_store(settings, keep_trying=True) as store,
        open_bot(settings, http, store) as bot,
    ):
        retrying = await _signing_in(bot)
        digest = DigestRunner(settings, store, http, bot, worker_name())
        ticker = DigestTicker(digest, settings.digest_tick_seconds)
        web_app = create_web_app(
            None,
            metrics=bot.metrics,
            gauges=gauges(store, bot.metrics),
            readiness=readiness(
                DatabaseWatch(store), slack=lambda: bot.authorization.signed_in,
                metrics=bot.metrics,
            ),
        )  # fmt: skip
        try:
            # Until a signal: then no new run, and the one going stops before its next post.
            await _serving(
                _serve_http(web_app, host, port, _stop_taking_work(digest, ticker)), retrying
            )
        finally:
            await cancelled(retrying)
            await ticker.stop(DIGEST_DRAIN_S)


async def look_up(settings: Settings, query: Query) -> QueryResult:
    """`errors`: one lookup; raises `LookupFailure` when the errors cannot be read."""
    async with cluster_http() as http:
        return await run_query(make_cluster_client(settings, http), query, int(time.time() * 1000))
