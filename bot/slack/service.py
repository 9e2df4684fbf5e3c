"""Sending built messages to Slack: parent, thread replies, trace files, joining channels.

The only place that calls the Web API for answers; builders in `blocks.py` never send.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors.grouping import ErrorGroup
from bot.errors.traces import Runtime
from bot.slack import blocks
from bot.usecases.results import QueryResult

log = logging.getLogger(__name__)

_PRIVATE_OR_HIDDEN = frozenset({"channel_not_found", "method_not_supported_for_channel_type"})
_REFUSALS = {
    "is_archived": "the channel is archived",
    "restricted_action": "the workspace does not let apps post here",
    "restricted_action_read_only_channel": "the channel is read-only",
    "restricted_action_thread_only_channel": "the channel only takes replies in threads",
}
"""Slack's refusals that no retry or invitation can fix, in words a user understands."""
SEND_FAILURES = (SlackClientError, aiohttp.ClientError, asyncio.TimeoutError)
"""What one Web API call can raise: an `ok: false` answer, a transport or a timeout error."""


class CannotPost(Exception):
    """The bot cannot post in the channel; `private` means inviting it would help."""

    def __init__(self, reason: str, *, private: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.private = private


def _error_code(error: SlackApiError) -> str:
    return str(error.response.get("error", "unknown_error"))


class ChannelPacer:
    """About one post per second per channel (Slack's `chat.postMessage` limit); channels do
    not wait for each other."""

    def __init__(
        self,
        interval_s: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = interval_s
        self._clock, self._sleep = clock, sleep
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, channel: str) -> None:
        async with self._locks.setdefault(channel, asyncio.Lock()):
            delay = self._next.get(channel, 0.0) - self._clock()
            if delay > 0:
                await self._sleep(delay)
            self._next[channel] = self._clock() + self._interval


class SlackPoster:
    """Posts in one workspace through one `AsyncWebClient` (shared settings, retry handlers)."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        show_input: bool = False,
        pacer: ChannelPacer | None = None,
    ) -> None:
        self._client = client
        self._show_input = show_input
        self._pacer = pacer

    async def post(
        self,
        channel: str,
        message: blocks.SlackMessage,
        *,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> str:
        """Post a message (joining a public channel first if needed); returns its `ts`."""
        try:
            return await self._post_once(channel, message, thread_ts, broadcast)
        except SlackApiError as error:
            code = _error_code(error)
            if code in _REFUSALS:
                raise CannotPost(_REFUSALS[code]) from error
            if code not in ("not_in_channel", *_PRIVATE_OR_HIDDEN):
                raise
        if channel.startswith("D"):
            raise CannotPost("apps cannot post in a direct message between people; use a channel")
        await self._join(channel)
        return await self._post_once(channel, message, thread_ts, broadcast)

    async def update(self, channel: str, ts: str, message: blocks.SlackMessage) -> None:
        """Edit a message in place (notifies nobody)."""
        await self._client.chat_update(channel=channel, ts=ts, **message.as_kwargs())

    async def _post_once(
        self,
        channel: str,
        message: blocks.SlackMessage,
        thread_ts: str | None,
        broadcast: bool = False,
    ) -> str:
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        if broadcast:
            extra["reply_broadcast"] = True
        if self._pacer is not None:
            await self._pacer.wait(channel)
        response = await self._client.chat_postMessage(
            channel=channel, unfurl_links=False, unfurl_media=False, **message.as_kwargs(), **extra
        )
        return str(response["ts"])

    async def post_ephemeral(self, channel: str, user: str, message: blocks.SlackMessage) -> None:
        await self._client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs())

    async def _join(self, channel: str) -> None:
        try:
            await self._client.conversations_join(channel=channel)
        except SlackApiError as error:
            code = _error_code(error)
            if code in _PRIVATE_OR_HIDDEN:
                raise CannotPost("private channel", private=True) from error
            if code in _REFUSALS:
                raise CannotPost(_REFUSALS[code]) from error
            if code == "missing_scope":
                raise CannotPost("the app lacks the channels:join scope; reinstall it") from error
            raise CannotPost(code) from error
        log.info("joined channel %s to answer there", channel)

    async def post_query_result(
        self, channel: str, result: QueryResult, requested_by: str | None = None
    ) -> ThreadReport:
        """The parent in the channel, then one reply per group (newest first) in its thread.

        The parent failing raises (nothing was said yet); a reply failing is logged and the
        others still go out, so one message Slack refuses cannot silence the whole thread.
        """
        parent_ts = await self.post(channel, blocks.query_parent(result, requested_by))
        groups = result.groups[: blocks.MAX_REPLIES]
        posted = 0
        for group in groups:
            try:
                await self.post_group(channel, parent_ts, group)
            except SEND_FAILURES as error:
                log.error("reply %s in %s refused: %s", group.fingerprint, channel, error)
                continue
            posted += 1
        return ThreadReport(parent_ts, posted, len(groups))

    async def post_group(self, channel: str, thread_ts: str, group: ErrorGroup) -> None:
        """One group's details in a thread; its whole trace attached when the reply shows
        only part of it."""
        reply = blocks.group_reply(group, show_input=self._show_input)
        await self._post_once(channel, reply.message, thread_ts)
        if reply.full_trace is not None:
            await self._attach_trace(
                channel,
                thread_ts,
                reply.full_trace,
                filename=_trace_filename(group.latest.record.request_id),
                comment=blocks.trace_file_comment(group),
                python=group.runtime is Runtime.PYTHON,
            )

    async def _attach_trace(
        self,
        channel: str,
        thread_ts: str,
        trace: str,
        *,
        filename: str,
        comment: str,
        python: bool,
    ) -> None:
        """Upload the whole trace as a snippet; the thread already shows its end, so a failed
        upload is logged, not fatal."""
        extra: dict[str, Any] = {"snippet_type": "python"} if python else {}
        try:
            await self._client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                content=trace,
                filename=filename,
                title=filename,
                initial_comment=comment,
                **extra,
            )
        except SEND_FAILURES as error:
            log.warning("could not attach %s in %s: %s", filename, channel, error)


@dataclass(frozen=True, slots=True)
class ThreadReport:
    parent_ts: str
    posted: int
    """Group replies Slack accepted."""
    total: int


def _trace_filename(request_id: str) -> str:
    """A file name from an untrusted request id: safe characters, bounded length."""
    return f"trace-{re.sub(r'[^A-Za-z0-9._-]', '_', request_id)[:80]}.txt"
