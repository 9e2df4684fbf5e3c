"""The process's commands, composed from `build`: `serve`, the `digest` worker, one digest run,
and one lookup for `errors`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from starlette.applications import Starlette
from structlog.contextvars import bound_contextvars

from bot.config import Settings
from bot.digest.ticker import DigestTicker
from bot.domain.commands import Query
from bot.slack.server import WebServer, create_web_app
from bot.store.exceptions import StoreUnavailable
from bot.store.repository import Store
from bot.usecases.digest import DigestReport, run_digests
from bot.usecases.query import run_query
from bot.usecases.results import QueryResult
from bot.wiring.build import (
    Bot,
    SlackUnreachable,
    build_bot,
    check_slack_token,
    cluster_http,
    keep_signing_in,
    make_cluster_client,
    open_store,
    require_slack,
    worker_name,
)
from bot.wiring.health import DatabaseWatch, gauges, readiness

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DigestRunner:
    """One digest run with this process's collaborators: the very code path of the
    scheduler's tick, `digest --once` and the demo."""

    settings: Settings
    store: Store
    http: httpx.AsyncClient
    bot: Bot
    worker: str

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
                )
            except StoreUnavailable as error:  # retried at the next tick; one line, no traceback
                log.warning("digest run skipped: %s", error)
                metrics.digest_runs.labels(outcome="storage_failed").inc()
                return DigestReport(error=f"DATABASE_URL: {error}")
            took = time.monotonic() - started
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


async def _signing_in(bot: Bot) -> asyncio.Task[None] | None:
    """Sign in to Slack now; when it does not answer, keep trying in the background (the
    task returned) while the process serves and `/readyz` says `slack`. A refused token is a
    `StartupError`."""
    try:
        await check_slack_token(bot)
    except SlackUnreachable as error:
        return asyncio.create_task(keep_signing_in(bot, error))
    return None


async def _stopped(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def serve(settings: Settings, host: str, port: int, *, scheduler: bool = True) -> None:
    require_slack(settings, "serve")
    async with cluster_http() as http, open_store(settings) as store:
        bot = build_bot(settings, http, store)
        retrying = await _signing_in(bot)
        digest = DigestRunner(settings, store, http, bot, worker_name())
        ticker = DigestTicker(digest, settings.digest_tick_seconds) if scheduler else None
        try:
            await _serve_slack(settings, bot, DatabaseWatch(store), host, port, retrying)
        finally:
            await _stopped(retrying)
            if ticker is not None:
                await ticker.stop()


async def _serve_slack(
    settings: Settings,
    bot: Bot,
    database: DatabaseWatch,
    host: str,
    port: int,
    retrying: asyncio.Task[None] | None = None,
) -> None:
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
        await _serve_http(web_app, host, port)
        return
    if retrying is not None:  # the socket can only be opened once Slack answers
        await retrying
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(
        bot.bolt, app_token=settings.slack_app_token.get_secret_value()
    )
    await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in slack-bolt
    log.info("connected to Slack over Socket Mode")

    async def connected() -> bool:
        return bool(await handler.client.is_connected())

    try:
        web_app = create_web_app(
            None,
            metrics=bot.metrics,
            gauges=gauges(database.store, bot.metrics),
            readiness=readiness(
                database, socket=connected, slack=lambda: bot.authorization.signed_in,
                metrics=bot.metrics,
            ),
        )  # fmt: skip
        await _serve_http(web_app, host, port)
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]  # untyped in slack-bolt


async def _serve_http(web_app: Starlette, host: str, port: int) -> None:
    server = WebServer(web_app, host, port)
    log.info("serving on %s:%s", host, server.port)
    await server.serve()


async def digest_once(settings: Settings, *, everything: bool) -> DigestReport:
    """`digest --once [--all]`: one run."""
    require_slack(settings, "digest")
    async with cluster_http() as http, open_store(settings) as store:
        bot = build_bot(settings, http, store)
        await check_slack_token(bot)
        return await DigestRunner(settings, store, http, bot, worker_name())(everything=everything)


async def digest_worker(settings: Settings, host: str, port: int) -> None:
    """`digest`: the scheduler alone (a worker process), until SIGTERM or SIGINT. It serves
    `/healthz`, `/readyz` and `/metrics` on `host:port`, so it can be probed and scraped."""
    require_slack(settings, "digest")
    async with cluster_http() as http, open_store(settings) as store:
        bot = build_bot(settings, http, store)
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
            await _serve_http(web_app, host, port)  # until a signal
        finally:
            await _stopped(retrying)
            await ticker.stop()


async def look_up(settings: Settings, query: Query) -> QueryResult:
    """`errors`: one lookup; raises `LookupFailure` when the errors cannot be read."""
    async with cluster_http() as http:
        return await run_query(make_cluster_client(settings, http), query, int(time.time() * 1000))
