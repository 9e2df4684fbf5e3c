"""What the listeners share: the use cases' collaborators, the senders and the clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from bot.metrics import Metrics, Outcome
from bot.slack.blocks import answers
from bot.slack.blocks.base import SlackMessage
from bot.slack.sender import SEND_FAILURES, SlackSender, slack_trouble
from bot.store.exceptions import StoreUnavailable
from bot.usecases.alerts import AlertStore
from bot.usecases.home import HomeStore
from bot.usecases.query import ErrorSource
from bot.usecases.results import FailureKind, LookupFailure
from bot.usecases.subscriptions import SubscriptionStore
from bot.usecases.turns import CpuTurns

log = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]


class AfterAck:
    """The work listeners do after their ack has answered Slack: each runs as a task of its
    own (with the context of the request that started it), and a process that stops waits
    for them a while (`drain`) before it cuts them short.

    Bolt's lazy listeners would do the same, but deep-copy every request first (a
    measurable part of each ack's cost under load) and keep their tasks to themselves, so a
    stopping process could not wait for them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The work's own catch-all failed too (telling the user, say): one line.
            log.error("work after an ack failed: %r", type(task.exception()).__name__)

    async def settled(self) -> None:
        """Return once no work is left (work started meanwhile included): for the tests'
        and the demo's harness, which wait for a command's whole answer."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def drain(self, timeout_s: float) -> None:
        """Wait up to `timeout_s` for the work in progress, then cancel what is left (a
        query's answer then stops where it was)."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        if late:
            log.warning("stopping: %d commands or clicks were cut short", len(late))
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)


class BotStore(SubscriptionStore, AlertStore, HomeStore, Protocol):
    """What the Slack listeners need of the store, through the use cases."""


@dataclass(frozen=True)
class Services:
    source: ErrorSource
    store: BotStore
    metrics: Metrics
    sender: SlackSender
    """Everything said in Slack, paced with the process's one pacer (digests use it too)."""
    show_input: bool
    clock: Callable[[], float]
    web_url: str | None = None
    """The cluster's console, for links to an algorithm's page."""
    after_ack: AfterAck = field(default_factory=AfterAck)
    """Where the listeners' work runs once Slack has its answer."""
    turns: CpuTurns = field(default_factory=CpuTurns)
    """The process's turns for heavy steps (reading a response, rendering an answer): the
    acks and probes that arrive meanwhile are answered between two."""

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


def id_in(payload: dict[str, Any], key: str) -> str:
    """`payload[key]["id"]` as Slack sends it (`channel`, `user`), "" for anything else: a
    signed payload can still be malformed."""
    part = payload.get(key)
    value = part.get("id") if isinstance(part, dict) else None
    return value if isinstance(value, str) else ""


async def tell_user(
    respond: Respond,
    sender: SlackSender,
    channel: str | None,
    user: str | None,
    message: SlackMessage,
    *,
    replace_original: bool | None = None,
) -> None:
    """Answer only the user: through the payload's `response_url`, else `chat.postEphemeral`
    (the URL expires after 30 minutes and 5 uses, and can fail like any request)."""
    extra = {} if replace_original is None else {"replace_original": replace_original}
    try:
        response = await respond(response_type="ephemeral", **extra, **message.as_kwargs())
        if getattr(response, "status_code", 200) < 300:
            return
        log.warning("response_url answered %s", response.status_code)
    # ValueError: the payload had no response_url; TypeError: one that is not a URL.
    except (*SEND_FAILURES, ValueError, TypeError) as error:
        # Its type only: the message may quote the URL, which can post for half an hour.
        log.warning("response_url failed (%s)", type(error).__name__)
    if not user or not channel:
        return
    try:
        await sender.post_ephemeral(channel, user, message)
    except SEND_FAILURES as error:
        log.error("could not answer %s in %s either: %s", user, channel, error)


class Handling:
    """A command or an interaction being handled: how it came out (ok unless a branch says
    otherwise) and the context its log lines carry."""

    def __init__(self, context: dict[str, object]) -> None:
        self.outcome = Outcome.OK
        self.context = dict(context)

    def bind(self, **context: object) -> None:
        """More context for the log lines from here on (a command's kind once it is parsed)."""
        structlog.contextvars.bind_contextvars(**context)
        self.context.update(context)


@contextlib.contextmanager
def handling(
    logger: logging.Logger,
    event: str,
    counted: Callable[[Handling], None],
    **context: object,
) -> Iterator[Handling]:
    """Bind `context` (user, channel, …) to every log line while a command or an interaction is
    handled, and end it with one INFO line `event` with its outcome (failed when it raised),
    `counted` in its metric."""
    handled, started = Handling(context), time.monotonic()
    with structlog.contextvars.bound_contextvars(**context):
        try:
            yield handled
        except BaseException:
            handled.outcome = Outcome.FAILED
            raise
        finally:
            took = round(time.monotonic() - started, 3)
            counted(handled)
            logger.info(event, extra={"outcome": str(handled.outcome), "duration_s": took})
            structlog.contextvars.unbind_contextvars(*(handled.context.keys() - context.keys()))


_REFUSALS = {
    FailureKind.ALGORITHM_NOT_FOUND,
    FailureKind.NOT_FOUND_BY_ID,
    FailureKind.ERROR_LOGS_DISABLED,
    FailureKind.FORBIDDEN,
}
"""Lookups the cluster refused for this algorithm; the others are failures (of the cluster, or
of the bot's credentials)."""


def lookup_outcome(failure: LookupFailure) -> Outcome:
    return Outcome.REFUSED if failure.kind in _REFUSALS else Outcome.FAILED


_NAME = re.compile(r"[\w/.:-]{1,100}")
"""A command's or an action's name as the logs may quote it (a payload is never logged)."""


async def unexpected(
    services: Services, error: Exception, body: dict[str, Any], respond: Respond | None
) -> None:
    """Where what a listener did not expect ends (`app.error` for the acks, the work after
    them for itself): a bug is logged with its traceback and the user told; a database or
    Slack outage is one line in the log, and the user hears which it is."""
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    what = body.get("command") or (first.get("action_id") if isinstance(first, dict) else "")
    what = what if isinstance(what, str) and _NAME.fullmatch(what) else "?"  # not any value
    channel = str(body.get("channel_id") or id_in(body, "channel"))
    user = str(body.get("user_id") or id_in(body, "user"))
    with structlog.contextvars.bound_contextvars(user=user, channel=channel):
        if isinstance(error, StoreUnavailable):
            log.warning("handling %s needed the database: %s", what, error)
            answer = answers.storage_unavailable()
        elif (trouble := slack_trouble(error)) is not None:  # Slack's outage: no bug of ours
            log.warning("handling %s needed Slack: %s", what, trouble)
            answer = answers.slack_trouble(trouble)
        else:
            log.error("handling %s failed", what, exc_info=error)
            answer = answers.internal_error()
    if respond is None:  # not a command or an interaction: nobody to tell
        return
    await tell_user(
        respond, services.sender, channel, user, answer,
        replace_original=None if body.get("command") else False,
    )  # fmt: skip
