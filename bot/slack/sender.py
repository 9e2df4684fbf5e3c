"""The one way messages reach Slack: posts, replies, trace files, edits and ephemeral answers.

It sends what the builders in `bot.slack.blocks` planned, never builds messages itself: paced
per channel (when given a pacer; a 429 is waited out by the client's retry handler, see
`pacing`), a post tagged in its metadata and, after a reset, a timeout or a 5xx, looked for in
Slack before it is sent again; it reports what Slack accepted. A post to a channel the bot cannot
post in (see `refusals`) raises `CannotPost`; other refusals (a deleted thread) raise Slack's
own `SlackApiError` for the caller to read.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.blocks.base import SlackMessage
from bot.slack.blocks.query import QueryAnswer, Reply
from bot.slack.pacing import ChannelPacer
from bot.slack.refusals import Refusal, meaning

log = logging.getLogger(__name__)

SEND_FAILURES = (SlackClientError, aiohttp.ClientError, asyncio.TimeoutError)
"""What one Web API call can raise: an `ok: false` answer, a transport or a timeout error."""


class CannotPost(Exception):
    """The bot cannot post in the channel; `private` means inviting it would help."""

    def __init__(self, reason: str, *, private: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.private = private


def error_code(error: SlackApiError) -> str:
    return str(error.response.get("error", "unknown_error"))


EVENT_TYPE = "algo_errors_post"
"""The metadata event type of the bot's posts; the payload names the post's intent (a digest's
post) or a tag of its own (any other post)."""
_MAX_PAGES = 10
_MAX_PAGES_SINCE = 500
"""Pages read back to a known moment: 100,000 messages, a bound against a runaway loop only."""
_CLOCK_SKEW_S = 600.0
"""How far the host's clock and Slack's may differ when history is read back to a moment."""
_POST_WINDOW_S = 900.0
"""How long after it was about to be sent a post may land (pacing and 429 waits included)."""
_OWN_TAG = "post:"
"""The prefix of the tag of a post that is no digest intent (a query's, a notice's)."""
_POST_TRIES = 3
_RETRY_BASE_S = 0.5


_SLACK_TROUBLE = frozenset(
    {"service_unavailable", "fatal_error", "internal_error", "request_timeout", "ratelimited"}
)
"""What Slack answers, with a 200 too, when it is in trouble rather than refusing the call."""


def slack_trouble(error: BaseException) -> str | None:
    """How Slack failed, when the failure is Slack's own and a retry later may cure it (no
    connection, no answer in time, a 5xx, one of `_SLACK_TROUBLE`; a 429 is waited out by the
    client's rate-limit handler before it gets here); None for anything else (a refusal of
    the call itself, a bug)."""
    if isinstance(error, SlackApiError):
        status, code = int(error.response.status_code), error_code(error)
        if status >= 500 or code in _SLACK_TROUBLE:
            return f"Slack answered {status} ({code})" if status >= 500 else f"Slack said {code}"
        return None
    if isinstance(error, asyncio.TimeoutError):
        return "Slack did not answer in time"
    if isinstance(error, aiohttp.ClientError):
        return f"Slack could not be reached ({str(error) or type(error).__name__})"
    return None


def intent_metadata(intent_id: str) -> dict[str, Any]:
    """Message metadata tagging a post with its intent (found again after a crash)."""
    return {"event_type": EVENT_TYPE, "event_payload": {"intent": intent_id}}


def _intent_of(metadata: object) -> str | None:
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return None
    payload = metadata.get("event_payload")
    intent = payload.get("intent") if isinstance(payload, dict) else None
    return str(intent) if intent is not None else None


@dataclass
class _Thread:
    intents: dict[str, str] = field(default_factory=dict)
    """Intent id → the `ts` of the message tagged with it."""
    file_titles: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ThreadReport:
    parent_ts: str
    posted: int
    """Group replies Slack accepted."""
    total: int


class SlackSender:
    """Sends in one workspace through one `AsyncWebClient` (shared settings, retry handlers)."""

    def __init__(self, client: AsyncWebClient, *, pacer: ChannelPacer | None = None) -> None:
        self._client = client
        self._pacer = pacer

    async def post(
        self,
        channel: str,
        message: SlackMessage,
        *,
        thread_ts: str | None = None,
        broadcast: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Post a message (joining a public channel first if needed); returns its `ts`."""
        try:
            return await self._post_once(channel, message, thread_ts, broadcast, metadata=metadata)
        except SlackApiError as error:
            known = meaning(error_code(error))
            if known is None or known.refusal is Refusal.MESSAGE_GONE:
                raise
            if known.refusal is Refusal.CHANNEL_CLOSED:
                raise CannotPost(known.reason) from error
        if channel.startswith("D"):
            raise CannotPost("apps cannot post in a direct message between people; use a channel")
        await self._join(channel)
        return await self._post_once(channel, message, thread_ts, broadcast, metadata=metadata)

    async def update(self, channel: str, ts: str, message: SlackMessage) -> None:
        """Edit a message in place (notifies nobody)."""
        await self._client.chat_update(channel=channel, ts=ts, **message.as_kwargs())

    async def post_ephemeral(self, channel: str, user: str, message: SlackMessage) -> None:
        await self._client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs())

    async def user_channels(self, user: str) -> set[str]:
        """The channels `user` is a member of that the bot can see (users.conversations: the
        public ones, and the private ones the bot is in too), every page."""
        channels: set[str] = set()
        cursor: str | None = None
        for _ in range(_MAX_PAGES_SINCE):
            page = await self._client.users_conversations(
                user=user, types="public_channel,private_channel", exclude_archived=True,
                limit=200, cursor=cursor,
            )  # fmt: skip
            channels.update(str(c["id"]) for c in page.get("channels") or [] if isinstance(c, dict))
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return channels

    async def is_person(self, user: str) -> bool | None:
        """Whether `user` is someone an alert can reach (users.info): not a bot (an app's,
        a workflow's, Slackbot) nor a deactivated account; None when Slack does not say."""
        if user == "USLACKBOT":  # Slackbot: users.info calls it no bot
            return False
        try:
            answer = await self._client.users_info(user=user)
        except SlackApiError as error:
            if error_code(error) in ("user_not_found", "user_not_visible"):
                return False
            log.warning("users.info for %s failed: %s", user, error_code(error))
            return None
        except SEND_FAILURES as error:
            log.warning("users.info for %s failed: %s", user, error)
            return None
        found = answer.get("user")
        if not isinstance(found, dict):
            return None
        # Not `is_app_user`: that is a person who authorized this app (often who installed it).
        return not (found.get("is_bot") or found.get("is_workflow_bot") or found.get("deleted"))

    async def permalink(self, channel: str, ts: str) -> str | None:
        """A link to a message (chat.getPermalink); None when Slack has none (it was deleted)."""
        try:
            response = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as error:
            log.info("no permalink for %s in %s: %s", ts, channel, error_code(error))
            return None
        link = response.get("permalink")
        return str(link) if link else None

    async def publish_home(self, user: str, view: dict[str, Any], view_hash: str | None) -> bool:
        """Publish the user's Home tab; False when it changed meanwhile (`hash_conflict`: a
        newer publish won, nothing to do)."""
        extra = {"hash": view_hash} if view_hash else {}
        try:
            await self._client.views_publish(user_id=user, view=view, **extra)
        except SlackApiError as error:
            if error_code(error) == "hash_conflict":
                return False
            raise
        return True

    async def send_answer(self, channel: str, answer: QueryAnswer) -> ThreadReport:
        """A query's planned answer: the parent in the channel, then each reply in its thread.

        The parent failing raises (nothing was said yet); a reply failing is logged and the
        others still go out, so one message Slack refuses cannot silence the whole thread.
        """
        parent_ts = await self.post(channel, answer.parent)
        posted = 0
        for reply in answer.replies:
            try:
                await self.send_reply(channel, parent_ts, reply)
            except SEND_FAILURES as error:
                log.error("a reply in %s was refused: %s", channel, error)
                continue
            posted += 1
        return ThreadReport(parent_ts, posted, len(answer.replies))

    async def send_reply(
        self,
        channel: str,
        thread_ts: str,
        reply: Reply,
        *,
        metadata: dict[str, Any] | None = None,
        again: bool = False,
    ) -> bool:
        """A reply in a thread, then its trace file; False when the file could not be
        uploaded (logged: the reply already shows the trace's end; a tagged reply's caller
        tries again later). `again`: an earlier try may have got through before its process
        died: what the thread already holds (the reply by its metadata, the file by its
        title) is not sent twice."""
        held = await self.thread_contents(channel, thread_ts) if again else _Thread()
        tagged = metadata is not None and _intent_of(metadata) in held.intents
        if not tagged:  # joining first if the bot was removed, as any post
            await self.post(channel, reply.message, thread_ts=thread_ts, metadata=metadata)
        trace = reply.trace_file
        if trace is None or trace.title in held.file_titles:
            return True
        extra: dict[str, Any] = {"snippet_type": trace.snippet_type} if trace.snippet_type else {}
        try:
            await self._client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                content=trace.content,
                filename=trace.filename,
                title=trace.title,
                initial_comment=trace.comment,
                **extra,
            )
        except SEND_FAILURES as error:
            log.warning("could not attach %s in %s: %s", trace.filename, channel, error)
            return False
        return True

    async def find_tagged(
        self, channel: str, intent_id: str, *, thread_ts: str | None, since: float | None = None
    ) -> str | None:
        """The `ts` of the message tagged with this intent: in the thread of `thread_ts`, or
        among the channel's messages around `since` (Unix seconds, when it was about to be
        sent: from `_CLOCK_SKEW_S` before, for the host's clock and Slack's to differ, to
        `_POST_WINDOW_S` after), newest first; without `since`, among the latest `_MAX_PAGES`
        pages. None when there is none."""
        if thread_ts is not None:
            return (await self.thread_contents(channel, thread_ts)).intents.get(intent_id)
        # Narrowly, as a distributed app outside the Marketplace may read history only once a
        # minute, 15 messages a page: from a little before the post was sent to a while after.
        oldest = f"{since - _CLOCK_SKEW_S:.6f}" if since is not None else None
        latest = f"{since + _CLOCK_SKEW_S + _POST_WINDOW_S:.6f}" if since is not None else None
        cursor: str | None = None
        for _ in range(_MAX_PAGES if since is None else _MAX_PAGES_SINCE):
            page = await self._reading(
                channel,
                partial(
                    self._client.conversations_history,
                    channel=channel, limit=200, cursor=cursor, include_all_metadata=True,
                    oldest=oldest, latest=latest,
                ),
            )  # fmt: skip
            for message in page.get("messages") or []:
                if _intent_of(message.get("metadata")) == intent_id:
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return None

    async def thread_contents(self, channel: str, thread_ts: str) -> _Thread:
        """What a thread holds of ours: tagged messages by intent, and file titles."""
        held = _Thread()
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            page = await self._reading(
                channel,
                partial(
                    self._client.conversations_replies,
                    channel=channel, ts=thread_ts, limit=200, cursor=cursor,
                    include_all_metadata=True,
                ),
            )  # fmt: skip
            for message in page.get("messages") or []:
                intent = _intent_of(message.get("metadata"))
                if intent is not None:
                    held.intents[intent] = str(message["ts"])
                held.file_titles.update(
                    str(f.get("title")) for f in message.get("files") or [] if f.get("title")
                )
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        return held

    async def _reading(self, channel: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """A read in a channel; a public channel the bot was removed from is joined first,
        as a post would."""
        try:
            return await call()
        except SlackApiError as error:
            known = meaning(error_code(error))
            if known is None or known.refusal is not Refusal.NOT_IN_CHANNEL:
                raise
        await self._join(channel)
        return await call()

    async def _post_once(
        self,
        channel: str,
        message: SlackMessage,
        thread_ts: str | None,
        broadcast: bool = False,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        if broadcast:
            extra["reply_broadcast"] = True
        # Every post carries a tag (its intent's, or one of its own), so one whose answer was
        # lost (a reset, a timeout, a 5xx) is looked for in Slack before it is sent again.
        extra["metadata"] = metadata or intent_metadata(f"{_OWN_TAG}{uuid.uuid4().hex}")
        intent = _intent_of(extra["metadata"])
        sent = time.time()
        for attempt in range(_POST_TRIES):
            try:
                async with self._paced(channel):
                    response = await self._client.chat_postMessage(
                        channel=channel, unfurl_links=False, unfurl_media=False,
                        **message.as_kwargs(), **extra,
                    )  # fmt: skip
                return str(response["ts"])
            except SEND_FAILURES as error:
                if slack_trouble(error) is None or attempt == _POST_TRIES - 1:
                    raise
                reason = str(error) or type(error).__name__
                log.warning("posting in %s failed (%s); trying again", channel, reason)
            # Slack may have kept the message and failed only to answer.
            if intent is not None:
                try:
                    found = await self.find_tagged(channel, intent, thread_ts=thread_ts, since=sent)
                except SEND_FAILURES as error:
                    if not intent.startswith(_OWN_TAG):
                        raise  # a digest's intent stays open: a later run looks again
                    reason = str(error) or type(error).__name__
                    log.warning("could not look for the post in %s (%s)", channel, reason)
                    found = None  # sent again: a rare double rather than a lost answer
                if found is not None:
                    return found
            await asyncio.sleep(_RETRY_BASE_S * 2**attempt)
        raise AssertionError("unreachable: the last try raises")

    @asynccontextmanager
    async def _paced(self, channel: str) -> AsyncIterator[None]:
        """A post's turn in `channel` (at once without a pacer); a 429 inside holds the
        channel back in the pacer."""
        if self._pacer is None:
            yield
            return
        await self._pacer.wait(channel)
        with self._pacer.posting_to(channel):
            yield

    async def _join(self, channel: str) -> None:
        try:
            await self._client.conversations_join(channel=channel)
        except SlackApiError as error:
            if slack_trouble(error) is not None:  # not the channel's fault: tried again later
                raise
            code = error_code(error)
            known = meaning(code)
            if known is not None and known.refusal is Refusal.HIDDEN:
                raise CannotPost(known.reason, private=True) from error
            if known is not None:
                raise CannotPost(known.reason) from error
            if code == "missing_scope":
                raise CannotPost("the app lacks the channels:join scope; reinstall it") from error
            raise CannotPost(code) from error
        log.info("joined channel %s to answer there", channel)
