"""The Bolt app: maps `/algo-errors` payloads to use cases and results to Slack answers.

Every command is acknowledged before any I/O; the slow work runs after the ack (Bolt keeps the
listener running once `ack()` answered Slack).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
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
                await _answer_query(
                    command,
                    text=text,
                    channel=str(body.get("channel_id", "")),
                    user=body.get("user_id"),
                    respond=respond,
                    poster=SlackPoster(client, show_input=show_input),
                    bot_user_id=context.get("bot_user_id"),
                )
            case Subscribe() | Unsubscribe() | ListSubscriptions():
                keyword = text.split()[0].lower()
                await ack(
                    response_type="ephemeral", **blocks.not_yet_available(keyword).as_kwargs()
                )

    async def _answer_query(
        query: Query,
        *,
        text: str,
        channel: str,
        user: str | None,
        respond: Respond,
        poster: SlackPoster,
        bot_user_id: str | None,
    ) -> None:
        try:
            result = await run_query(source, query, int(clock() * 1000))
        except LookupFailure as failure:
            log.info("lookup failed: %s", failure)
            metrics.lookups.labels(outcome=failure.kind.value).inc()
            await _ephemeral(respond, blocks.lookup_failed(failure))
            return
        except Exception:  # the edge of a listener: log it, tell the user
            log.exception("query for %s failed", query.target)
            metrics.lookups.labels(outcome="internal_error").inc()
            await _ephemeral(respond, blocks.internal_error())
            return
        metrics.lookups.labels(outcome="ok").inc()
        if not result.groups:
            await _ephemeral(respond, blocks.no_errors(result))
            return
        try:
            await poster.post_query_result(channel, result, requested_by=user)
        except CannotPost as cannot:
            message = (
                blocks.invite_me(bot_user_id, text)
                if cannot.private
                else blocks.channel_unavailable(cannot.reason)
            )
            await _ephemeral(respond, message)
        except SlackApiError as error:
            log.error("posting to %s failed: %s", channel, error.response.get("error"))
            await _ephemeral(respond, blocks.internal_error())
        except Exception:
            log.exception("posting the errors of %s failed", query.target)
            await _ephemeral(respond, blocks.internal_error())

    return app


async def _ephemeral(respond: Respond, message: blocks.SlackMessage) -> None:
    response = await respond(response_type="ephemeral", **message.as_kwargs())
    status = getattr(response, "status_code", 200)
    if status >= 300:
        log.warning("response_url answered %s", status)
