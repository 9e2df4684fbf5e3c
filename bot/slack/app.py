"""The Bolt app: maps `/algo-errors` payloads to use cases and results to Slack answers.

Every command is acknowledged before any I/O; the slow work runs after the ack (Bolt keeps the
listener running once `ack()` answered Slack).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics
from bot.slack import blocks
from bot.slack.commands import (
    COMMAND,
    CommandSyntaxError,
    Help,
    ListSubscriptions,
    Query,
    Subscribe,
    Unsubscribe,
    parse_command,
)
from bot.slack.service import CannotPost, ChannelPacer, SlackPoster
from bot.usecases.alerts import AlertStore, change_alert
from bot.usecases.query import ErrorSource, run_query
from bot.usecases.results import LookupFailure
from bot.usecases.subscriptions import (
    SubscriptionStore,
    list_subscriptions,
    subscribe,
    unsubscribe,
)

log = logging.getLogger(__name__)

Respond = Callable[..., Any]
Tell = Callable[[blocks.SlackMessage], Awaitable[None]]
_ALERT_ACTIONS = re.compile(r"^group_(resolve|mute|reopen)$")


class BotStore(SubscriptionStore, AlertStore, Protocol):
    """What the Slack listeners need of the store, through the use cases."""


def create_app(
    *,
    client: AsyncWebClient,
    signing_secret: str,
    source: ErrorSource,
    store: BotStore,
    metrics: Metrics,
    show_input: bool = False,
    pacer: ChannelPacer | None = None,
    clock: Callable[[], float] = time.time,
) -> AsyncApp:
    """Build the Bolt app. `client` carries the token, base URL and retry handlers."""
    app = AsyncApp(client=client, signing_secret=signing_secret, process_before_response=False)

    def now() -> datetime:
        return datetime.fromtimestamp(clock(), UTC)

    @app.command(COMMAND)
    async def on_command(
        ack: Any, body: dict[str, Any], respond: Respond, client: AsyncWebClient, context: Any
    ) -> None:
        text = str(body.get("text") or "")
        try:
            command = parse_command(text)
        except CommandSyntaxError as problem:
            metrics.commands.labels(kind="invalid").inc()
            await ack(response_type="ephemeral", **blocks.usage(str(problem)).as_kwargs())
            return
        metrics.commands.labels(kind=type(command).__name__.lower()).inc()
        match command:
            case Help():
                await ack(response_type="ephemeral", **blocks.usage().as_kwargs())
            case Query():
                await ack(
                    response_type="ephemeral",
                    **blocks.lookup_started(str(command.target)).as_kwargs(),
                )
                channel = str(body.get("channel_id", ""))
                user = body.get("user_id")
                poster = SlackPoster(client, show_input=show_input)

                async def tell(message: blocks.SlackMessage) -> None:
                    await _tell_user(respond, poster, channel, user, message)

                try:  # the edge of the listener: whatever fails is logged and the user told
                    await answer_query(command, text, channel, user, poster, tell, context)
                except Exception:
                    log.exception("answering /algo-errors %s failed", command.target)
                    metrics.lookups.labels(outcome="internal_error").inc()
                    await tell(blocks.internal_error())
            case Subscribe() | Unsubscribe() | ListSubscriptions():
                started = (
                    blocks.lookup_started(str(command.target))
                    if isinstance(command, Subscribe)
                    else None
                )
                await ack(response_type="ephemeral", **(started.as_kwargs() if started else {}))
                channel = str(body.get("channel_id", ""))
                user = str(body.get("user_id", ""))
                poster = SlackPoster(client, show_input=show_input, pacer=pacer)

                async def tell_user(message: blocks.SlackMessage) -> None:
                    await _tell_user(respond, poster, channel, user, message)

                try:
                    await manage_subscriptions(
                        command, text, channel, user, poster, tell_user, client, context
                    )
                except Exception:
                    log.exception("/algo-errors %s failed", text)
                    await tell_user(blocks.internal_error())

    async def manage_subscriptions(
        command: Subscribe | Unsubscribe | ListSubscriptions,
        text: str,
        channel: str,
        user: str,
        poster: SlackPoster,
        tell: Tell,
        client: AsyncWebClient,
        context: Any,
    ) -> None:
        if isinstance(command, ListSubscriptions):
            await tell(blocks.subscription_list(await list_subscriptions(store, channel)))
            return
        if isinstance(command, Unsubscribe):
            if not await unsubscribe(store, command.target, channel):
                await tell(blocks.not_subscribed(str(command.target)))
                return
            try:
                await poster.post(channel, blocks.unsubscribed(str(command.target), by=user))
            except CannotPost:
                await tell(blocks.unsubscribed(str(command.target), by=user))
            return
        user_tz = None if command.timezone else await _user_timezone(client, user)
        try:
            done = await subscribe(
                store, source, command,
                channel_id=channel, user_id=user, user_timezone=user_tz, now=now(),
            )  # fmt: skip
        except LookupFailure as failure:
            await tell(blocks.lookup_failed(failure))
            return
        confirmation = blocks.subscribed(
            done.subscription, again=done.again, seen=done.seen, by=user
        )
        try:
            await poster.post(channel, confirmation)
        except CannotPost as cannot:
            if not done.again:  # a subscription that can never post is no subscription
                await unsubscribe(store, command.target, channel)
            await tell(
                blocks.invite_me(context.get("bot_user_id"), text)
                if cannot.private
                else blocks.channel_unavailable(cannot.reason)
            )

    @app.action(_ALERT_ACTIONS)
    async def on_alert_action(
        ack: Any, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient,
        respond: Respond,
    ) -> None:  # fmt: skip
        await ack()
        verb = str(action["action_id"]).removeprefix("group_")
        key_text = action.get("value") or str(action.get("block_id", "")).removeprefix("alert:")
        try:
            key = json.loads(key_text)
            channel = body["channel"]["id"]
            changed = await change_alert(
                store, channel, str(key["a"]), str(key["f"]), action=verb,
                user=body["user"]["id"], now=now(),
                mute=(action.get("selected_option") or {}).get("value"),
            )  # fmt: skip
            if changed is None:
                await respond(
                    response_type="ephemeral", replace_original=False,
                    **blocks.alert_unknown().as_kwargs(),
                )  # fmt: skip
                return
            poster = SlackPoster(client)
            await poster.update(
                channel, body["container"]["message_ts"], blocks.alert_parent(changed)
            )
        except Exception:
            log.exception("%s of an alert failed", verb)
            await respond(
                response_type="ephemeral", replace_original=False,
                **blocks.internal_error().as_kwargs(),
            )  # fmt: skip

    async def answer_query(
        query: Query,
        text: str,
        channel: str,
        user: str | None,
        poster: SlackPoster,
        tell: Callable[[blocks.SlackMessage], Awaitable[None]],
        context: Any,
    ) -> None:
        try:
            result = await run_query(source, query, int(clock() * 1000))
        except LookupFailure as failure:
            log.info("lookup failed: %s", failure)
            metrics.lookups.labels(outcome=failure.kind.value).inc()
            await tell(blocks.lookup_failed(failure))
            return
        metrics.lookups.labels(outcome="ok").inc()
        if not result.groups:
            await tell(blocks.no_errors(result))
            return
        try:
            report = await poster.post_query_result(channel, result, requested_by=user)
        except CannotPost as cannot:
            await tell(
                blocks.invite_me(context.get("bot_user_id"), text)
                if cannot.private
                else blocks.channel_unavailable(cannot.reason)
            )
            return
        if report.posted < report.total:
            await tell(blocks.partly_posted(report.posted, report.total, result.target))

    return app


async def _user_timezone(client: AsyncWebClient, user: str) -> str | None:
    """The user's Slack time zone (`users.info`), or None when Slack does not say."""
    try:
        answer = await client.users_info(user=user)
    except Exception as error:
        log.warning("users.info for %s failed: %s", user, error)
        return None
    zone = (answer.get("user") or {}).get("tz")
    if not zone:
        return None
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("Slack gave %s the unknown time zone %r; using UTC", user, zone)
        return None
    return str(zone)


async def _tell_user(
    respond: Respond,
    poster: SlackPoster,
    channel: str,
    user: str | None,
    message: blocks.SlackMessage,
) -> None:
    """Answer only the user: through the command's `response_url`, else `chat.postEphemeral`
    (the URL expires after 30 minutes and 5 uses, and can fail like any request)."""
    try:
        response = await respond(response_type="ephemeral", **message.as_kwargs())
        if getattr(response, "status_code", 200) < 300:
            return
        log.warning("response_url answered %s", response.status_code)
    except Exception as error:
        log.warning("response_url failed: %s", error)
    if not user:
        return
    try:
        await poster.post_ephemeral(channel, user, message)
    except Exception:
        log.exception("could not answer %s in %s either", user, channel)
