"""What the listeners share: the use cases' collaborators, the senders and the clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.metrics import Metrics, Outcome
from bot.slack.blocks.base import SlackMessage
from bot.slack.sender import SEND_FAILURES, SlackSender
from bot.usecases.alerts import AlertStore
from bot.usecases.home import HomeStore
from bot.usecases.query import ErrorSource
from bot.usecases.results import FailureKind, LookupFailure
from bot.usecases.subscriptions import SubscriptionStore

log = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]

_BOLT_ACK_POLL_S = 0.01
"""How often Bolt's runner looks for the ack while a listener runs (`asyncio_runner.py`)."""


async def acknowledge(ack: Callable[..., Awaitable[Any]], **answer: Any) -> None:
    """`ack()`, then wait until Bolt has taken the answer.

    Bolt polls for the ack every 10 ms; if the listener raises before that poll, its runner
    overwrites the ack with "no response" and Slack gets a 404 (the command "failed"), although
    `app.error` still told the user. The runner's poll timer is due before this one, so waiting
    one poll interval after the ack always lets it through first."""
    await ack(**answer)
    await asyncio.sleep(_BOLT_ACK_POLL_S * 1.5)


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

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


_NAMED_WRONG = frozenset({FailureKind.ALGORITHM_NOT_FOUND, FailureKind.NOT_FOUND_BY_ID})


def lookup_outcome(failure: LookupFailure) -> Outcome:
    """An algorithm that does not exist was named wrong (`refused`); anything else the cluster
    answered (credentials, an outage, a bad response) made the command fail."""
    return Outcome.REFUSED if failure.kind in _NAMED_WRONG else Outcome.FAILED


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
        log.warning("response_url failed: %s", error)
    if not user or not channel:
        return
    try:
        await sender.post_ephemeral(channel, user, message)
    except SEND_FAILURES as error:
        log.error("could not answer %s in %s either: %s", user, channel, error)
