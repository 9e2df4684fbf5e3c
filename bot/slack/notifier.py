"""Digest alerts in Slack: the `AlertNotifier` the digest runner talks to.

Builds each message with `blocks.alerts` / `blocks.query`, sends it with the sender, and turns
Slack's "never" answers (`refusals`) into `ChannelGone` (the subscription pauses) and
`AlertGone` (the news get a new alert).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from slack_sdk.errors import SlackApiError

from bot.digest.plan import DigestAction, Kind
from bot.domain.alerts import AlertThread, PendingNotice, PostIntent, Subscription
from bot.errors.grouping import ErrorGroup
from bot.metrics import Metrics
from bot.slack.blocks import alerts, query
from bot.slack.blocks.base import SlackMessage
from bot.slack.refusals import Refusal, meaning
from bot.slack.sender import (
    SEND_FAILURES,
    CannotPost,
    SlackSender,
    error_code,
    intent_metadata,
    slack_trouble,
)
from bot.usecases.digest_ports import AlertGone, ChannelGone, PostFailed
from bot.usecases.results import LookupFailure

log = logging.getLogger(__name__)

T = TypeVar("T")


async def _in_channel(call: Awaitable[T]) -> T:
    """Slack's answers as the digest run acts on them: a channel or alert gone for good, or a
    post that failed this time (`PostFailed`)."""
    try:
        return await call
    except CannotPost as cannot:
        raise ChannelGone(cannot.reason) from cannot
    except SlackApiError as error:
        known = meaning(error_code(error))
        if known is not None and known.refusal is Refusal.MESSAGE_GONE:
            raise AlertGone(known.reason) from error
        if known is not None:
            raise ChannelGone(known.reason) from error
        raise PostFailed(f"Slack refused a post: {error_code(error) or error}") from error
    except SEND_FAILURES as error:
        raise PostFailed(f"Slack did not answer: {str(error) or type(error).__name__}") from error


class SlackAlertNotifier:
    """Each post Slack confirmed counts in `algo_errors_alerts_total{kind}`: a new alert, a
    recurrence or regression reply, an outage or recovery notice."""

    def __init__(
        self,
        sender: SlackSender,
        *,
        show_input: bool = False,
        web_url: str | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._sender = sender
        self._show_input = show_input
        self._web_url = web_url
        self._metrics = metrics

    def _counted(self, kind: str) -> None:
        if self._metrics is not None:
            self._metrics.alerts.labels(kind=kind).inc()

    async def new_alert(
        self, channel_id: str, thread: AlertThread, intent_id: str, *, notify: Sequence[str] = ()
    ) -> str:
        message = alerts.alert_parent(thread, notify=notify, web_url=self._web_url)
        metadata = intent_metadata(intent_id)
        ts = await _in_channel(self._sender.post(channel_id, message, metadata=metadata))
        self._counted("new")
        return ts

    async def first_reply(
        self,
        channel_id: str,
        parent_ts: str,
        group: ErrorGroup,
        split_from: AlertThread | None,
        intent_id: str,
        *,
        again: bool = False,
    ) -> bool:
        lead = alerts.split_note(split_from) if split_from is not None else None
        reply = query.group_reply(group, show_input=self._show_input, lead=lead)
        try:
            return await _in_channel(
                self._sender.send_reply(
                    channel_id, parent_ts, reply, metadata=intent_metadata(intent_id), again=again
                )
            )
        except AlertGone as gone:  # the alert itself was deleted: nothing to reply to
            log.warning("the alert %s in %s is gone: %s", parent_ts, channel_id, gone)
            return True
        except PostFailed as error:  # the alert is told; its trace follows at a later run
            log.warning(
                "the first reply of alert %s in %s failed: %s", parent_ts, channel_id, error
            )
            return False

    async def thread_news(
        self, action: DigestAction, intent_id: str | None, *, notify: Sequence[str] = ()
    ) -> None:
        thread = action.thread
        regression = action.kind is Kind.REGRESSION
        if action.replies:
            reply = alerts.recurrence_reply(
                action.group, thread, regression=regression, notify=notify if regression else ()
            )
            await _in_channel(
                self._sender.post(
                    thread.channel_id, reply, thread_ts=thread.parent_ts, broadcast=regression,
                    metadata=intent_metadata(intent_id) if intent_id else None,
                )
            )  # fmt: skip
            self._counted("regression" if regression else "recurrence")
        await self._edit(thread, mute_ended=action.mute_ended)

    async def find_post(self, intent: PostIntent) -> str | None:
        try:
            return await _in_channel(
                self._sender.find_tagged(
                    intent.channel_id,
                    intent.id,
                    thread_ts=intent.thread_ts,
                    since=intent.created_at.timestamp(),
                )
            )
        except AlertGone:  # the thread was deleted: nothing of it is there
            return None

    async def mute_over(self, thread: AlertThread) -> bool:
        return await self._edit(thread, mute_ended=True)

    async def refresh(self, thread: AlertThread) -> None:
        await self._edit(thread, mute_ended=False)

    async def _edit(self, thread: AlertThread, *, mute_ended: bool) -> bool:
        """Redraw the alert; False when Slack failed for its own trouble (a later edit can
        still land), True when done or refused for good (a deleted message: nothing to show)."""
        parent = alerts.alert_parent(thread, mute_ended=mute_ended, web_url=self._web_url)
        try:
            await self._sender.update(thread.channel_id, thread.parent_ts, parent)
        except SEND_FAILURES as error:  # an edit only refreshes what the thread already told
            log.warning("could not update alert %s: %s", thread.parent_ts, error)
            return slack_trouble(error) is None
        return True

    async def outage(
        self, subscription: Subscription, failure: LookupFailure, notice_id: str
    ) -> None:
        message = alerts.cluster_outage(
            subscription.algorithm, failure, subscription.notify, self._web_url
        )
        await self._notice(subscription.channel_id, message, notice_id)

    async def recovered(self, subscription: Subscription, notice_id: str) -> None:
        message = alerts.cluster_recovered(subscription.algorithm, self._web_url)
        await self._notice(subscription.channel_id, message, notice_id)

    async def _notice(self, channel_id: str, message: SlackMessage, notice_id: str) -> None:
        tag = intent_metadata(notice_id)
        await _in_channel(self._sender.post(channel_id, message, metadata=tag))
        self._counted("notice")

    async def find_notice(self, channel_id: str, notice: PendingNotice) -> bool:
        found = await _in_channel(
            self._sender.find_tagged(
                channel_id, notice.id, thread_ts=None, since=notice.created_at.timestamp()
            )
        )
        return found is not None
