"""The composition root and the command line: `serve`, `errors`, `demo`.

The only module that builds the process's collaborators (one `httpx.AsyncClient`, one
`AsyncWebClient`, the Bolt app, the web server) and wires them. Nothing is created at import.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette

from bot.algorithmia.client import AlgorithmiaClient, default_timeout
from bot.config import ConfigError, Settings, load_settings, require
from bot.errors.grouping import ErrorGroup
from bot.metrics import Metrics
from bot.slack.alerts import SlackAlertNotifier
from bot.slack.app import create_app
from bot.slack.commands import CommandSyntaxError, Query, parse_command
from bot.slack.server import WebServer, create_web_app
from bot.slack.service import ChannelPacer, SlackPoster
from bot.store.exceptions import StoreError
from bot.store.repository import Store
from bot.usecases.digest import DigestReport, run_digests
from bot.usecases.query import run_query
from bot.usecases.results import LookupFailure, QueryResult

log = logging.getLogger("bot")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def make_slack_client(token: str, base_url: str) -> AsyncWebClient:
    """One Web API client; Bolt copies its base URL and retry handlers to every request."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def make_cluster_client(settings: Settings, http: httpx.AsyncClient) -> AlgorithmiaClient:
    return AlgorithmiaClient(http, settings.algorithmia_api_url, settings.authorization_header())


@dataclass
class Bot:
    """The Slack side of one process: the Bolt app, its metrics, and the digest path."""

    bolt: AsyncApp
    metrics: Metrics
    notifier: SlackAlertNotifier
    """Posts digests through the Bolt app's client, paced with the same per-channel pacer."""


def require_slack(settings: Settings, command: str) -> None:
    """Before anything is opened: the Slack settings `command` cannot do without."""
    require(settings, command, "SLACK_BOT_TOKEN")
    if command == "serve" and not settings.socket_mode:
        require(settings, command, "SLACK_SIGNING_SECRET")


def build_bot(
    settings: Settings, http: httpx.AsyncClient, store: Store, *, post_interval_s: float = 1.0
) -> Bot:
    """`post_interval_s`: digest posts per channel are at least this far apart (Slack takes
    about one message per second per channel)."""
    require(settings, "the bot", "SLACK_BOT_TOKEN")
    assert settings.slack_bot_token is not None  # checked by require()
    secret = settings.slack_signing_secret
    metrics = Metrics()
    pacer = ChannelPacer(post_interval_s)
    client = make_slack_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    bolt = create_app(
        client=client,
        signing_secret=secret.get_secret_value() if secret is not None else "",
        source=make_cluster_client(settings, http),
        store=store,
        metrics=metrics,
        show_input=settings.show_input,
        pacer=pacer,
    )
    notifier = SlackAlertNotifier(SlackPoster(client, show_input=settings.show_input, pacer=pacer))
    return Bot(bolt, metrics, notifier)


@asynccontextmanager
async def cluster_http() -> AsyncIterator[httpx.AsyncClient]:
    """The process's one HTTP client toward the cluster (connection reuse, bounded pool)."""
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
    async with httpx.AsyncClient(
        timeout=default_timeout(), limits=limits, follow_redirects=True
    ) as http:
        yield http


class StartupError(Exception):
    """The bot cannot start; the message is one line for the operator."""


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """The store of `DATABASE_URL`, upgraded to the current schema."""
    try:
        store = await Store.open(settings.database_url)
    except StoreError as error:
        raise StartupError(f"DATABASE_URL: {error}") from None
    try:
        yield store
    finally:
        await store.close()


async def check_slack_token(bot: Bot) -> None:
    """Fail at start, not at the first command, when Slack refuses the token."""
    try:
        identity = await bot.bolt.client.auth_test()
    except SlackApiError as error:
        raise StartupError(
            f"SLACK_BOT_TOKEN: Slack refused it ({error.response.get('error')})"
        ) from None
    except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
        raise StartupError(f"SLACK_API_URL: cannot reach Slack ({error})") from None
    log.info("signed in to Slack as %s in %s", identity.get("user"), identity.get("team"))


WORKER = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
"""This process's name on the leases it takes."""


async def digest_once(
    settings: Settings,
    store: Store,
    http: httpx.AsyncClient,
    bot: Bot,
    *,
    everything: bool = False,
) -> DigestReport:
    """One digest run: the very code path of the scheduler's tick and of `digest --once`."""
    report = await run_digests(
        store,
        make_cluster_client(settings, http),
        bot.notifier,
        now=datetime.now(UTC),
        worker=WORKER,
        everything=everything,
        concurrency=DIGEST_CONCURRENCY,
    )
    for reason in report.failed.values():
        log.warning("digest failed: %s", reason)
    return report


DIGEST_CONCURRENCY = 16
"""Cluster fetches in flight during one digest run."""


class DigestTicker:
    """The digest scheduler: `tick` every `every_s` seconds, coalesced, never two at once, the
    first one now; `stop()` lets a run in progress finish (its posts are counted only once
    Slack confirmed them, so cutting it short would post them again next time)."""

    def __init__(self, tick: Callable[[], Awaitable[object]], every_s: int) -> None:
        self._tick = tick
        self._running = asyncio.Lock()
        self._stopping = False
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(
            self._guarded,
            IntervalTrigger(seconds=every_s),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=every_s,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()

    async def _guarded(self) -> None:
        async with self._running:
            if self._stopping:
                return
            try:
                await self._tick()
            except Exception:  # the edge of a scheduled job: log it, the next tick runs anyway
                log.exception("digest tick failed")

    async def stop(self, grace_s: float = 120) -> None:
        # APScheduler's shutdown cancels a running job: let the run finish first.
        self._stopping = True
        self._scheduler.pause()
        try:
            async with asyncio.timeout(grace_s), self._running:
                pass
        except TimeoutError:
            log.warning("a digest run was still going after %s s; its leases will expire", grace_s)
        self._scheduler.shutdown(wait=False)


async def serve(settings: Settings, host: str, port: int, *, scheduler: bool = True) -> None:
    require_slack(settings, "serve")
    async with cluster_http() as http, open_store(settings) as store:
        bot = build_bot(settings, http, store)
        await check_slack_token(bot)
        ticker = (
            DigestTicker(
                lambda: digest_once(settings, store, http, bot), settings.digest_tick_seconds
            )
            if scheduler
            else None
        )
        try:
            await _serve_slack(settings, bot, host, port)
        finally:
            if ticker is not None:
                await ticker.stop()


async def _serve_slack(settings: Settings, bot: Bot, host: str, port: int) -> None:
    if settings.slack_app_token is None:
        await _serve_http(create_web_app(bot.bolt, metrics=bot.metrics), host, port)
        return
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(
        bot.bolt, app_token=settings.slack_app_token.get_secret_value()
    )
    await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in slack-bolt
    log.info("connected to Slack over Socket Mode")

    async def connected() -> bool:
        return bool(await handler.client.is_connected())

    try:
        web_app = create_web_app(None, metrics=bot.metrics, ready=connected)
        await _serve_http(web_app, host, port)
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]  # untyped in slack-bolt


async def digest_command(settings: Settings, *, once: bool, everything: bool) -> int:
    """`digest --once [--all]`: one run, exit 1 naming each failure; `digest`: the scheduler
    alone (a worker process), until a signal."""
    require_slack(settings, "digest")
    async with cluster_http() as http, open_store(settings) as store:
        bot = build_bot(settings, http, store)
        await check_slack_token(bot)
        if once:
            report = await digest_once(settings, store, http, bot, everything=everything)
            for reason in report.failed.values():
                print(f"failed: {reason}", file=sys.stderr)
            counts = f"{len(report.ran)} ran, {len(report.failed)} failed"
            print(f"digest: {counts}, {report.posted} posted")
            return EXIT_FAILED if report.failed else EXIT_OK
        ticker = DigestTicker(
            lambda: digest_once(settings, store, http, bot), settings.digest_tick_seconds
        )
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        try:
            await stopping.wait()
        finally:
            await ticker.stop()
    return EXIT_OK


async def _serve_http(web_app: Starlette, host: str, port: int) -> None:
    server = WebServer(web_app, host, port)
    log.info("serving on %s:%s", host, server.port)
    await server.serve()


# `errors` ---------------------------------------------------------------------------------------


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def group_as_json(group: ErrorGroup) -> dict[str, Any]:
    return {
        "fingerprint": group.fingerprint,
        "error_type": group.error_type,
        "headline": group.headline,
        "count": group.count,
        "request_ids": list(group.request_ids),
        "versions": list(group.versions),
        "first_seen": group.first_seen,
        "last_seen": group.last_seen,
        "own_frames": [f.location() for f in group.latest.parsed.own_frames],
    }


def result_as_json(result: QueryResult) -> dict[str, Any]:
    return {
        "algorithm": result.target,
        "errors": result.errors,
        "groups": [group_as_json(g) for g in result.groups],
        "skipped_records": result.skipped,
    }


def result_as_text(result: QueryResult) -> str:
    scope = f"matching {result.options}" if result.options else "in the last 7 days"
    errors = f"{result.errors} error{'' if result.errors == 1 else 's'}"
    groups = f"{len(result.groups)} group{'' if len(result.groups) == 1 else 's'}"
    lines = [f"{result.target}: {errors} in {groups} {scope}"]
    if result.beyond_window:
        lines.append("(the API keeps only the last 7 days)")
    if result.skipped:
        lines.append(f"({result.skipped} malformed records from the cluster left out)")
    for number, group in enumerate(result.groups, 1):
        lines.append("")
        lines.append(f"[{number}] {group.headline}")
        lines.append(
            f"    {group.count}× · {group.error_type} · versions {', '.join(group.versions) or '?'}"
            f" · first {_iso(group.first_seen)} · last {_iso(group.last_seen)}"
        )
        own = group.latest.parsed.own_frames[:5]
        if own:
            lines.append("    your code: " + " ← ".join(f.location() for f in own))
        lines.append(
            f"    latest request: {group.latest.record.request_id} · id {group.fingerprint}"
        )
    return "\n".join(lines)


async def errors_command(settings: Settings, query: Query, as_json: bool) -> int:
    async with cluster_http() as http:
        try:
            result = await run_query(
                make_cluster_client(settings, http), query, int(time.time() * 1000)
            )
        except LookupFailure as failure:
            detail = f": {failure.detail}" if failure.detail else ""
            print(
                f"error: {failure.target}: {failure.kind.value.replace('_', ' ')}{detail}",
                file=sys.stderr,
            )
            return EXIT_FAILED
    print(json.dumps(result_as_json(result)) if as_json else result_as_text(result))
    return EXIT_OK


# The command line -------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="algo-errors-bot",
        description="Slack bot for the recent errors of Algorithmia algorithms.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the Slack listener")
    serve_parser.add_argument("--host", default="0.0.0.0")
    serve_parser.add_argument("--port", type=int, default=None, help="default: $PORT or 3000")
    serve_parser.add_argument(
        "--no-scheduler", action="store_true", help="the Slack listener alone, no digests"
    )
    digest_parser = commands.add_parser(
        "digest", help="run due digests: once (--once) or on schedule (a worker process)"
    )
    digest_parser.add_argument("--once", action="store_true", help="run once and exit")
    digest_parser.add_argument(
        "--all", action="store_true", help="with --once: every subscription, due or not"
    )
    errors_parser = commands.add_parser(
        "errors", help="print an algorithm's grouped errors in the terminal"
    )
    errors_parser.add_argument("target", help="owner/name or id:UUID")
    errors_parser.add_argument("options", nargs="*", help="since:DURATION version:V type:T")
    errors_parser.add_argument("--json", action="store_true", help="print one JSON object")
    commands.add_parser("demo", help="run the bot against a sample cluster and a Slack stand-in")
    return parser


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_OK)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from bot.demo import run_demo

        return asyncio.run(run_demo())
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    # `errors` promises one line on stderr when it fails: retries are logged only in DEBUG.
    quiet = args.command == "errors" and settings.log_level != "DEBUG"
    logging.basicConfig(
        level="ERROR" if quiet else settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request and Alembic every check at INFO; the bot says what matters.
    for chatty in ("httpx", "alembic"):
        logging.getLogger(chatty).setLevel(
            max(logging.getLevelName(settings.log_level), logging.WARNING)
        )
    if args.command == "errors":
        try:
            command = parse_command(" ".join([args.target, *args.options]))
        except CommandSyntaxError as problem:
            print(f"error: {problem}", file=sys.stderr)
            return EXIT_USAGE
        if not isinstance(command, Query):
            print("error: give an algorithm: owner/name or id:UUID", file=sys.stderr)
            return EXIT_USAGE
        return asyncio.run(errors_command(settings, command, args.json))
    # uvicorn shuts HTTP down on SIGTERM, then re-raises the signal to the handler it found:
    # make that an orderly exit, so `serve()` still closes the Socket Mode connection.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if args.command == "digest":
            if args.all and not args.once:
                print("error: --all goes with --once", file=sys.stderr)
                return EXIT_USAGE
            return asyncio.run(digest_command(settings, once=args.once, everything=args.all))
        port = args.port if args.port is not None else settings.port
        asyncio.run(serve(settings, args.host, port, scheduler=not args.no_scheduler))
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StartupError as error:
        print(f"cannot start: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def run() -> None:
    """The console script: exit with `main()`'s status."""
    sys.exit(main())
