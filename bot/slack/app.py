"""The Bolt app: maps `/algo-errors` payloads to use cases and results to Slack answers.

Every command is acknowledged before any I/O; the slow work runs after the ack (Bolt keeps the
listener running once `ack()` answered Slack).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

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
from bot.slack.service import CannotPost, SlackPoster
from bot.usecases.query import ErrorSource, run_query
from bot.usecases.results import LookupFailure

log = logging.getLogger(__name__)

Respond = Callable[..., Any]


def create_app(
    *,
    client: AsyncWebClient,
    signing_secret: str,
    source: ErrorSource,
    metrics: Metrics,
    show_input: bool = False,
    clock: Callable[[], float] = time.time,
) -> AsyncApp:
    """Build the Bolt app. `client` carries the token, base URL and retry handlers."""
    app = AsyncApp(client=client, signing_secret=signing_secret, process_before_response=False)

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
                keyword = text.split()[0].lower()
                await ack(
                    response_type="ephemeral", **blocks.not_yet_available(keyword).as_kwargs()
                )

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
