"""The process's collaborators, each made once: the cluster's HTTP client, the Slack Web API
client, the store, and the Bolt app with its senders and the digest notifier."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.algorithmia.client import AlgorithmiaClient, default_timeout
from bot.algorithmia.pools import cluster_client
from bot.config import CLUSTER_CONCURRENCY, ConfigError, Settings, missing_for, require
from bot.metrics import Metrics
from bot.slack.app import Authorization, create_app
from bot.slack.calls import CallCounter
from bot.slack.listeners.services import AfterAck, Services
from bot.slack.notifier import SlackAlertNotifier
from bot.slack.pacing import ChannelPacer, PacingRetryHandler
from bot.slack.scopes import BOT_SCOPES
from bot.slack.sender import SlackSender, slack_trouble
from bot.store.engine import share_the_gil_with_sqlite
from bot.store.exceptions import InvalidDatabaseUrl, StoreUnavailable
from bot.store.repository import Store
from bot.usecases.turns import CpuTurns

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The bot cannot start; the message is one line for the operator."""


class SlackUnreachable(Exception):
    """Slack did not answer (no connection, a timeout, a 5xx): not a settings problem; a
    process keeps trying, `/readyz` says `slack` meanwhile."""


class DatabaseUnreachable(Exception):
    """The database did not answer at start: not a settings problem. `digest --once` exits 1
    naming it; `serve` and the worker start all the same (see `open_store`)."""


QUERY_CONNECTIONS = 8
"""Cluster connections kept beside a digest run's, for slash-command lookups meanwhile: the
lookups take turns for them however many commands arrive at once (beyond its connections a
pool's queue would only grow)."""
RETRY_FIRST_WAIT_S = 1.0
RETRY_LONGEST_WAIT_S = 60.0
"""Signing in to Slack and opening the store at start are retried with a wait doubling from
the first to the longest."""


def _retry_waits() -> Iterator[float]:
    wait = RETRY_FIRST_WAIT_S
    while True:
        yield wait
        wait = min(wait * 2, RETRY_LONGEST_WAIT_S)


def worker_name() -> str:
    """This process's name on the leases it takes: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


RATE_LIMIT_RETRIES = 1000
POST_INTERVAL_S = 1.1
"""Slack takes about one message per second per channel after a short burst; the pacer keeps
a tenth of a second's margin, so the posts' spacing survives the network's jitter."""
POST_BURST = 3
SLACK_TIMEOUT_S = 30
"""How long a Web API call may take before it counts as failed (slack-sdk's default)."""


def make_slack_client(
    token: str,
    base_url: str,
    pacer: ChannelPacer,
    *,
    time_scale: float = 1.0,
    timeout_s: int = SLACK_TIMEOUT_S,
    metrics: Metrics | None = None,
    session: aiohttp.ClientSession | None = None,
) -> AsyncWebClient:
    """One Web API client; Bolt copies its base URL, retry handlers and `session` to every
    request. Given no `session`, slack-sdk opens one (a new connection) for each call; the
    bot's `session` keeps its connections to Slack open between calls (`slack_session`)."""
    counted = [CallCounter(base_url, metrics.slack_call)] if metrics is not None else []
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout_s,
        session=session,
        # Only 429s are retried here, as often as Slack asks (each wait its Retry-After, the
        # run's lease kept alive meanwhile): a 429 means Slack took nothing. A reset or a 5xx
        # may come after Slack kept a post, so the sender retries those itself, looking for
        # a tagged post before sending it again.
        retry_handlers=[
            *counted,  # first: it sees every answer, and retries nothing
            PacingRetryHandler(pacer, max_retry_count=RATE_LIMIT_RETRIES, time_scale=time_scale),
        ],
    )


def make_cluster_client(
    settings: Settings,
    http: httpx.AsyncClient,
    metrics: Metrics | None = None,
    *,
    gate: asyncio.Semaphore | None = None,
) -> AlgorithmiaClient:
    return AlgorithmiaClient(
        http, settings.algorithmia_api_url, settings.authorization_header(),
        observe=metrics.cluster_request if metrics is not None else None, gate=gate,
    )  # fmt: skip


@asynccontextmanager
async def cluster_http(
    concurrency: int = CLUSTER_CONCURRENCY,
) -> AsyncIterator[httpx.AsyncClient]:
    """The process's one HTTP client toward the cluster (connection reuse, bounded pool): room
    for a digest run's `concurrency` requests and a few queries beside them."""
    async with cluster_client(concurrency + QUERY_CONNECTIONS, default_timeout()) as http:
        yield http


@asynccontextmanager
async def open_store(settings: Settings, *, keep_trying: bool = False) -> AsyncIterator[Store]:
    """The store of `DATABASE_URL`, upgraded to the current schema; a URL it cannot use is a
    `StartupError`. A database that does not answer is `DatabaseUnreachable`, unless
    `keep_trying` (a process that serves meanwhile): then the store comes all the same and is
    opened by a background task with a doubling wait (one WARNING each), or at its first use
    if that comes sooner. A start that fails (Slack refuses the token, …) leaves no SQLite
    file behind that it created itself."""
    created = _new_sqlite_file(settings.database_url)
    try:
        store = Store.connect_later(settings.database_url)
    except InvalidDatabaseUrl as error:
        raise StartupError(f"DATABASE_URL: {error}") from None
    share_the_gil_with_sqlite(store.database)
    opening: asyncio.Task[None] | None = None
    try:
        try:
            await store.database.migrate()
        except StoreUnavailable as error:
            if not keep_trying:
                raise DatabaseUnreachable(f"DATABASE_URL: {error}") from None
            opening = asyncio.create_task(keep_opening(store, error))
        yield store
    except StartupError:
        await cancelled(opening)
        await store.close()
        if created is not None:
            for leftover in (created, Path(f"{created}-wal"), Path(f"{created}-shm")):
                leftover.unlink(missing_ok=True)
        raise
    finally:
        await cancelled(opening)
        await store.close()


async def keep_opening(store: Store, first: StoreUnavailable) -> None:
    """Open the store once its database answers (the migrations included), for a process
    that serves meanwhile (`/readyz` says `database`)."""
    error = first
    for wait in _retry_waits():
        log.warning("DATABASE_URL: %s; trying again in %.0f s", error, wait)
        await asyncio.sleep(wait)
        try:
            await store.database.migrate()
        except StoreUnavailable as again:
            error = again
        else:
            log.info("the database answers: the store is open")
            return


async def cancelled(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task of start-up (signing in, opening the store) if still going."""
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _new_sqlite_file(database_url: str) -> Path | None:
    """The SQLite file `database_url` names when it does not exist yet, else None."""
    if not database_url.startswith("sqlite:///"):
        return None
    path = Path(database_url.removeprefix("sqlite:///").split("?", 1)[0])
    return None if path.exists() else path


def require_slack(settings: Settings, command: str) -> None:
    """Before anything is opened: the Slack settings `command` cannot do without (the command
    line checks them with the others; this is for settings loaded without a command)."""
    missing = missing_for(command, settings.model_dump())
    if missing:
        raise ConfigError(*missing.values())


@dataclass
class Bot:
    """The Slack side of one process: the Bolt app, its metrics, and the digest path."""

    bolt: AsyncApp
    signing_secret: str
    """Verifies every HTTP request from Slack (empty in Socket Mode)."""
    metrics: Metrics
    notifier: SlackAlertNotifier
    """Posts digests through the Bolt app's client, paced with the same per-channel pacer."""
    authorization: Authorization
    """Filled by `check_slack_token`, so Bolt asks Slack for nothing on the first request."""
    after_ack: AfterAck
    """The listeners' work after their acks, waited for a while when the process stops."""
    slack_session: aiohttp.ClientSession
    """The connections to Slack, kept open between calls (closed by `open_bot`)."""
    turns: CpuTurns
    """The process's turns for heavy steps: the queries' and the digest runs'."""


def slack_session(timeout_s: int) -> aiohttp.ClientSession:
    """The process's connections to Slack's Web API: kept alive between calls instead of a
    connection (in production a TLS handshake) for each post, as slack-sdk does when given
    none. Each call gets `timeout_s` in all (slack-sdk's own sessions get the same); made in
    the event loop."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))


@asynccontextmanager
async def open_bot(
    settings: Settings,
    http: httpx.AsyncClient,
    store: Store,
    *,
    slack_speed: float = 1.0,
    slack_timeout_s: int = SLACK_TIMEOUT_S,
) -> AsyncIterator[Bot]:
    """`build_bot`, its connections to Slack closed when the block ends."""
    bot = build_bot(settings, http, store, slack_speed=slack_speed, slack_timeout_s=slack_timeout_s)
    try:
        yield bot
    finally:
        await bot.slack_session.close()


def build_bot(
    settings: Settings,
    http: httpx.AsyncClient,
    store: Store,
    *,
    slack_speed: float = 1.0,
    slack_timeout_s: int = SLACK_TIMEOUT_S,
) -> Bot:
    """Posts in one channel go at Slack's pace (`POST_INTERVAL_S` apart after a burst of
    `POST_BURST`), one pacer for all of them; `slack_speed` > 1 only against a stand-in whose
    clock runs that much faster (the tests')."""
    require(settings, "the bot", "SLACK_BOT_TOKEN")
    assert settings.slack_bot_token is not None  # checked by require()
    secret = settings.slack_signing_secret
    signing_secret = secret.get_secret_value() if secret is not None else ""
    metrics = Metrics()
    pacer = ChannelPacer(POST_INTERVAL_S / slack_speed, burst=POST_BURST)
    session = slack_session(slack_timeout_s)
    client = make_slack_client(
        settings.slack_bot_token.get_secret_value(), settings.slack_api_url, pacer,
        time_scale=1 / slack_speed, timeout_s=slack_timeout_s, metrics=metrics, session=session,
    )  # fmt: skip
    paced = SlackSender(client, pacer=pacer)
    services = Services(
        source=make_cluster_client(
            settings, http, metrics, gate=asyncio.Semaphore(QUERY_CONNECTIONS)
        ),
        store=store,
        metrics=metrics,
        sender=paced,
        show_input=settings.show_input,
        clock=time.time,
        web_url=settings.web_url,
    )
    authorization = Authorization(client)
    bolt = create_app(
        client=client, signing_secret=signing_secret, services=services,
        authorization=authorization,
    )  # fmt: skip
    notifier = SlackAlertNotifier(
        paced, show_input=settings.show_input, web_url=settings.web_url, metrics=metrics
    )
    return Bot(
        bolt, signing_secret, metrics, notifier, authorization, services.after_ack, session,
        services.turns,
    )  # fmt: skip


async def check_slack_token(bot: Bot) -> None:
    """Fail at start, not at the first command, when Slack refuses the token (`StartupError`);
    `SlackUnreachable` when Slack does not answer."""
    try:
        identity = await bot.authorization.client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error")
        # Slack in trouble, not refusing the token: retried as Slack unreachable (a start
        # that failed for it would need an operator to restart it).
        if slack_trouble(error) is not None:
            raise SlackUnreachable(
                f"SLACK_API_URL: Slack answered {error.response.status_code}"
                + (f" ({code})" if code else "")
            ) from None
        raise StartupError(f"SLACK_BOT_TOKEN: Slack refused it ({code})") from None
    except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        raise SlackUnreachable(f"SLACK_API_URL: cannot reach Slack ({reason})") from None
    granted = {
        scope.strip()
        for scope in str((identity.headers or {}).get("x-oauth-scopes", "")).split(",")
        if scope.strip()
    }
    missing = [scope for scope in BOT_SCOPES if scope not in granted]
    if granted and missing:  # an app installed before the manifest asked for them
        raise StartupError(
            f"SLACK_BOT_TOKEN: the app lacks the scopes {', '.join(missing)}: reinstall it "
            "with the current manifest"
        )
    bot.authorization.remember(identity)
    log.info("signed in to Slack as %s in %s", identity.get("user"), identity.get("team"))


async def keep_signing_in(bot: Bot, first: SlackUnreachable) -> None:
    """Sign in to Slack once it answers: retried with a doubling wait (one WARNING each), for
    a process that serves meanwhile (`/readyz` says `slack`). A refusal then raises its
    `StartupError`, as at start: the token needs an operator, and the process ends (exit 2)
    rather than serve unready for good."""
    error = first
    for wait in _retry_waits():
        log.warning("%s; trying again in %.0f s", error, wait)
        await asyncio.sleep(wait)
        try:
            await check_slack_token(bot)
            return
        except SlackUnreachable as again:
            error = again
