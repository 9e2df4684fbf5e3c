"""`/algo-errors`: parse the text, ack at once, then answer the command after the ack.

Bolt keeps a listener running once `ack()` answered Slack, so every answer below is sent after
the ack; the user hears of a failure ephemerally, the channel only of what worked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.commands import (
    COMMAND,
    CommandSyntaxError,
    Help,
    ListSubscriptions,
    Query,
    Subscribe,
    Unsubscribe,
    parse_command,
)
from bot.metrics import Outcome
from bot.slack.blocks import answers, query, subscriptions
from bot.slack.blocks.base import SlackMessage
from bot.slack.listeners.services import (
    Handling,
    Respond,
    Services,
    handling,
    lookup_outcome,
    tell_user,
    unexpected,
)
from bot.slack.sender import SEND_FAILURES, CannotPost, slack_trouble
from bot.usecases.query import run_query
from bot.usecases.results import LookupFailure
from bot.usecases.subscriptions import (
    SubscribedAs,
    end_subscription,
    list_subscriptions,
    subscribe,
    unsubscribe,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Invocation:
    """Who typed what where, and how to answer only them."""

    text: str
    channel: str
    user: str
    respond: Respond
    bot_user_id: str | None
    services: Services
    handling: Handling

    async def tell(self, message: SlackMessage) -> None:
        await tell_user(self.respond, self.services.sender, self.channel, self.user, message)

    def cannot_post(self, cannot: CannotPost) -> SlackMessage:
        log.info("cannot post in the channel: %s", cannot.reason)
        self.handling.outcome = Outcome.REFUSED
        if cannot.private:
            return answers.invite_me(self.bot_user_id, self.text)
        return answers.channel_unavailable(cannot.reason)


def register(app: AsyncApp, services: Services) -> None:
    """The ack (Slack's 3 s) is answered as soon as the command is parsed; the work runs after
    it (`AfterAck`), so no lookup, store or Slack call delays any ack."""

    def counted(handled: Handling) -> None:
        name = str(handled.context.get("command", "usage"))
        services.metrics.commands.labels(command=name, outcome=handled.outcome).inc()

    async def answer_at_once(
        ack: Any, body: dict[str, Any], respond: Respond, client: AsyncWebClient, context: Any
    ) -> None:
        text = str(body.get("text") or "")
        try:
            command = parse_command(text)
        except CommandSyntaxError as problem:
            await ack(response_type="ephemeral", **answers.usage(str(problem)).as_kwargs())
            with _handling(body, counted) as handled:
                handled.bind(command="usage")
                handled.outcome = Outcome.REFUSED
            return
        if isinstance(command, Help):
            await ack(response_type="ephemeral", **answers.usage().as_kwargs())
            with _handling(body, counted) as handled:
                handled.bind(command="help")
            return
        started = (
            answers.lookup_started(str(command.target))
            if isinstance(command, Query)
            else answers.subscribing(str(command.target))
            if isinstance(command, Subscribe)
            else None
        )
        await ack(response_type="ephemeral", **(started.as_kwargs() if started else {}))
        services.after_ack.start(then_do_it(command, body, respond, client, context))

    async def then_do_it(
        command: Query | Subscribe | Unsubscribe | ListSubscriptions,
        body: dict[str, Any],
        respond: Respond,
        client: AsyncWebClient,
        context: Any,
    ) -> None:
        text = str(body.get("text") or "")
        try:
            with _handling(body, counted) as handled:
                handled.bind(command=_kind(command))
                if not isinstance(command, ListSubscriptions):
                    handled.bind(algorithm=str(command.target))
                # The work begins at a turn: in a burst of commands, the acks still to come
                # do not wait for the work of the ones answered, nor for answers being read.
                await services.turns.take()
                invocation = Invocation(
                    text, str(body.get("channel_id", "")), str(body.get("user_id", "")),
                    respond, context.get("bot_user_id"), services, handled,
                )  # fmt: skip
                match command:
                    case Query():
                        await _query(invocation, command)
                    case Subscribe():
                        await _subscribe(invocation, command, client)
                    case Unsubscribe():
                        await _unsubscribe(invocation, command)
                    case ListSubscriptions():
                        found = await list_subscriptions(services.store, invocation.channel)
                        await invocation.tell(subscriptions.subscription_list(found))
        except Exception as error:  # the edge of the work after the ack
            await unexpected(services, error, body, respond)

    app.command(COMMAND)(answer_at_once)


def _handling(
    body: dict[str, Any], counted: Callable[[Handling], None]
) -> AbstractContextManager[Handling]:
    """A command's log line and metric, with its user and channel bound meanwhile."""
    user, channel = str(body.get("user_id", "")), str(body.get("channel_id", ""))
    return handling(log, "command handled", counted, user=user, channel=channel)


def _kind(command: object) -> str:
    """The command's name in the logs: query, subscribe, unsubscribe, list or help."""
    return "list" if isinstance(command, ListSubscriptions) else type(command).__name__.lower()


async def _query(invocation: Invocation, command: Query) -> None:
    services = invocation.services
    try:
        result = await run_query(
            services.source, command, int(services.clock() * 1000), services.turns
        )
    except LookupFailure as failure:
        log.info("lookup failed: %s", failure)
        invocation.handling.outcome = lookup_outcome(failure)
        await invocation.tell(answers.lookup_failed(failure))
        return
    if not result.groups:
        await invocation.tell(query.no_errors(result))
        return
    await services.turns.take()  # rendering is the other heavy step of a query
    answer = query.query_answer(
        result, invocation.user or None, show_input=services.show_input, web_url=services.web_url
    )
    # The posts wait on Slack's pace, for minutes when commands pour in: what they need is
    # rendered, so the records and groups go (a full garbage collection would scan them,
    # holding every request of the process meanwhile: bench/README.md, the ack's p99).
    target = result.target
    del result
    try:
        report = await services.sender.send_answer(invocation.channel, answer)
    except CannotPost as cannot:
        await invocation.tell(invocation.cannot_post(cannot))
        return
    if report.posted < report.total:
        invocation.handling.outcome = Outcome.FAILED  # Slack took only part of the answer
        await invocation.tell(answers.partly_posted(report.posted, report.total, target))


async def _subscribe(invocation: Invocation, command: Subscribe, client: AsyncWebClient) -> None:
    services = invocation.services
    user_tz = None if command.timezone else await _user_timezone(client, invocation.user)
    try:
        done = await subscribe(
            services.store, services.source, command,
            channel_id=invocation.channel, user_id=invocation.user, user_timezone=user_tz,
            now=services.now(),
        )  # fmt: skip
    except LookupFailure as failure:
        log.info("lookup failed: %s", failure)
        invocation.handling.outcome = lookup_outcome(failure)
        await invocation.tell(answers.lookup_failed(failure))
        return
    except SubscribedAs as same:
        invocation.handling.outcome = Outcome.REFUSED
        asked = str(command.target)
        await invocation.tell(subscriptions.subscribed_as(asked, same.existing.algorithm))
        return
    confirmation = subscriptions.subscribed(
        done.subscription, again=done.again, seen=done.seen, by=invocation.user
    )
    try:
        await services.sender.post(invocation.channel, confirmation)
    except CannotPost as cannot:
        if not done.again:  # a subscription that can never post is no subscription
            await unsubscribe(services.store, command.target, invocation.channel)
        await invocation.tell(invocation.cannot_post(cannot))
    except SEND_FAILURES as error:
        trouble = slack_trouble(error)
        if trouble is None:  # a refusal of the post itself: a bug
            raise
        log.warning("the confirmation of a subscription was not posted: %s", trouble)
        invocation.handling.outcome = Outcome.FAILED
        await invocation.tell(answers.subscribed_untold(trouble))


async def _unsubscribe(invocation: Invocation, command: Unsubscribe) -> None:
    services = invocation.services
    ended = await end_subscription(
        services.store, services.source, command.target, invocation.channel
    )
    if ended is None:
        invocation.handling.outcome = Outcome.REFUSED
        await invocation.tell(subscriptions.not_subscribed(str(command.target)))
        return
    goodbye = subscriptions.unsubscribed(ended, by=invocation.user)
    try:
        await services.sender.post(invocation.channel, goodbye)
    except CannotPost:
        await invocation.tell(goodbye)
    except SEND_FAILURES as error:
        trouble = slack_trouble(error)
        if trouble is None:
            raise
        log.warning("the confirmation of an unsubscribe was not posted: %s", trouble)
        await invocation.tell(goodbye)  # done: the user at least hears so


async def _user_timezone(client: AsyncWebClient, user: str) -> str | None:
    """The user's Slack time zone (`users.info`), or None when Slack does not say."""
    try:
        answer = await client.users_info(user=user)
    except SEND_FAILURES as error:
        log.warning("users.info for %s failed: %s", user, error)
        return None
    zone = (answer.get("user") or {}).get("tz")
    if not zone:
        return None
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        log.warning("Slack gave %s the unknown time zone %r; using UTC", user, zone)
        return None
    return str(zone)
