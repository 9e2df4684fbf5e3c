"""Digest alerts in Slack: the `AlertNotifier` the digest runner talks to.

Builds the messages (`blocks.py`), posts and edits them (`service.py`), and turns Slack's
"never" answers for a channel into `ChannelGone`, which pauses the subscription.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

from slack_sdk.errors import SlackApiError

from bot.digest.plan import DigestAction, Kind
from bot.errors.grouping import ErrorGroup
from bot.slack import blocks
from bot.slack.service import SEND_FAILURES, CannotPost, SlackPoster
from bot.store.models import AlertThread, Subscription
from bot.usecases.digest import AlertGone, ChannelGone

log = logging.getLogger(__name__)

T = TypeVar("T")
_GONE = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
_ALERT_GONE = frozenset({"thread_not_found", "message_not_found"})


async def _in_channel(call: Awaitable[T]) -> T:
    try:
        return await call
    except CannotPost as cannot:
        raise ChannelGone(cannot.reason) from cannot
    except SlackApiError as error:
        code = str(error.response.get("error", ""))
        if code in _GONE:
            raise ChannelGone(code) from error
        if code in _ALERT_GONE:
            raise AlertGone(code) from error
        raise


class SlackAlertNotifier:
    def __init__(self, poster: SlackPoster) -> None:
        self._poster = poster

    async def new_alert(self, channel_id: str, thread: AlertThread) -> str:
        return await _in_channel(self._poster.post(channel_id, blocks.alert_parent(thread)))

    async def first_reply(self, channel_id: str, parent_ts: str, group: ErrorGroup) -> None:
        await _in_channel(self._poster.post_group(channel_id, parent_ts, group))

    async def thread_news(self, action: DigestAction) -> None:
        thread = action.thread
        regression = action.kind is Kind.REGRESSION
        if action.replies:
            reply = blocks.recurrence_reply(action.group, regression=regression)
            await _in_channel(
                self._poster.post(
                    thread.channel_id, reply, thread_ts=thread.parent_ts, broadcast=regression
                )
            )
        parent = blocks.alert_parent(thread, regressed=regression, mute_ended=action.mute_ended)
        try:
            await self._poster.update(thread.channel_id, thread.parent_ts, parent)
        except SEND_FAILURES as error:  # the reply went out: the news are told, not lost
            log.warning("could not update alert %s: %s", thread.parent_ts, error)

    async def mute_over(self, thread: AlertThread) -> None:
        parent = blocks.alert_parent(thread, mute_ended=True)
        try:
            await self._poster.update(thread.channel_id, thread.parent_ts, parent)
        except SEND_FAILURES as error:
            log.warning("could not update alert %s: %s", thread.parent_ts, error)

    async def outage(self, subscription: Subscription, detail: str) -> None:
        message = blocks.cluster_outage(subscription.algorithm, detail)
        await _in_channel(self._poster.post(subscription.channel_id, message))

    async def recovered(self, subscription: Subscription) -> None:
        message = blocks.cluster_recovered(subscription.algorithm)
        await _in_channel(self._poster.post(subscription.channel_id, message))
