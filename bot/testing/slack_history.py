"""The Slack stand-in's history methods, `conversations.history` and `conversations.replies`, as
a mixin of `SlackStandIn`: the channel and thread views of its messages and shared files, shaped,
bounded and paged as Slack returns them.

Source: Slack's Web API documentation (history needs membership and returns `metadata`
only with `include_all_metadata`; a broadcast reply shows in the channel as `thread_broadcast`)
and Slack's method reference (`slack-ruby/slack-api-ref`, docs.slack.dev/methods): `oldest` <
ts < `latest` unless `inclusive`; `limit` 100 (at most 999) for history, 1000 for replies;
`next_cursor` and `has_more` while more remain; `not_in_channel` because "only user tokens can
access public channels they are not in"; a reply's `ts` gives that reply alone (bolt-python#783).
**(inference)** The parent opens the first page of replies whatever `oldest`/`latest` say, and
continuation pages leave it out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from bot.testing.slack_records import (
    BOT_ID,
    BOT_USER_ID,
    PostedMessage,
    Refusal,
    UploadedFile,
    message_json,
)
from bot.testing.slack_requests import as_flag, text_param

HISTORY_LIMIT = 100
HISTORY_MAX_LIMIT = 999
REPLIES_LIMIT = 1000
REPLIES_MAX_LIMIT = 1000
_CURSOR_PREFIX = "next_ts:"

# A message in a conversation: posted with chat.postMessage, or the share of an uploaded file.
_Entry = PostedMessage | UploadedFile


class ConversationHistory:
    """The history method handlers of `SlackStandIn`, reading the state it owns."""

    # The conversation state, owned and initialised by `SlackStandIn`.
    members: set[str]
    private_channels: set[str]
    messages: list[PostedMessage]
    files: list[UploadedFile]

    # Provided by `WebApiMethods`.
    if TYPE_CHECKING:

        def _known(self, channel: str) -> bool: ...

    def _check_can_read(self, channel: str | None) -> str:
        """The channel if the bot may read its history, else the refusal Slack gives."""
        if not channel or not self._known(channel):
            raise Refusal("channel_not_found")
        if channel in self.private_channels and channel not in self.members:
            raise Refusal("channel_not_found")
        if channel not in self.members:
            raise Refusal("not_in_channel")
        return channel

    def _entries(self, channel: str) -> list[_Entry]:
        """Every message and file share in the channel, threads included, oldest first."""
        entries: list[_Entry] = [m for m in self.messages if m.channel == channel]
        entries += [f for f in self.files if f.channel == channel and f.ts]
        return sorted(entries, key=lambda entry: _ts(entry.ts))

    # -- Web API methods ---------------------------------------------------------------------

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._check_can_read(text_param(params, "channel"))
        oldest, latest = _bounds(params)
        limit = _limit(params, HISTORY_LIMIT, HISTORY_MAX_LIMIT)
        with_metadata = as_flag(params.get("include_all_metadata"))
        entries = self._entries(channel)
        shown = [
            entry
            for entry in reversed(entries)
            if (entry.thread_ts is None or _is_broadcast(entry)) and _within(entry, oldest, latest)
        ]
        page, next_cursor = _page(shown, text_param(params, "cursor"), limit, newest_first=True)
        body: dict[str, Any] = {
            "messages": [_json(entry, entries, with_metadata) for entry in page],
            "has_more": bool(next_cursor),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        for key in ("oldest", "latest"):
            if text_param(params, key) is not None:
                body[key] = text_param(params, key)
        if next_cursor:
            body["response_metadata"] = {"next_cursor": next_cursor}
        return body

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._check_can_read(text_param(params, "channel"))
        ts = text_param(params, "ts")
        oldest, latest = _bounds(params)
        limit = _limit(params, REPLIES_LIMIT, REPLIES_MAX_LIMIT)
        with_metadata = as_flag(params.get("include_all_metadata"))
        entries = self._entries(channel)
        target = next((entry for entry in entries if entry.ts == ts), None)
        if target is None:
            raise Refusal("thread_not_found")
        cursor = text_param(params, "cursor")
        if target.thread_ts is not None:
            # A reply's ts gives that reply alone, not its thread.
            thread: list[_Entry] = [target] if cursor is None else []
            page, next_cursor = thread, ""
        else:
            replies = [
                e for e in entries if e.thread_ts == target.ts and _within(e, oldest, latest)
            ]
            # The parent opens the first page (and counts towards its limit); later pages are
            # replies only.
            shown: list[_Entry] = replies if cursor is not None else [target, *replies]
            page, next_cursor = _page(shown, cursor, limit, newest_first=False)
        body: dict[str, Any] = {
            "messages": [_json(entry, entries, with_metadata) for entry in page],
            "has_more": bool(next_cursor),
        }
        if next_cursor:
            body["response_metadata"] = {"next_cursor": next_cursor}
        return body


def _json(entry: _Entry, entries: Sequence[_Entry], with_metadata: bool) -> dict[str, Any]:
    """One message as the history methods return it."""
    if isinstance(entry, PostedMessage):
        body = message_json(entry, with_metadata=with_metadata)
    else:
        body = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": entry.ts,
            "text": entry.initial_comment or "",
            "files": [{"id": entry.file_id, "name": entry.filename, "title": entry.title}],
            "upload": True,
        }
        if entry.thread_ts is not None:
            body["thread_ts"] = entry.thread_ts
    if entry.thread_ts is not None:
        body["parent_user_id"] = BOT_USER_ID
        if _is_broadcast(entry):
            body["subtype"] = "thread_broadcast"
        return body
    replies = [e for e in entries if e.thread_ts == entry.ts]
    if replies:
        body.update(
            thread_ts=entry.ts,
            reply_count=len(replies),
            reply_users_count=1,
            reply_users=[BOT_USER_ID],
            latest_reply=replies[-1].ts,
        )
    return body


def _is_broadcast(entry: _Entry) -> bool:
    return isinstance(entry, PostedMessage) and entry.reply_broadcast


def _ts(value: str) -> Decimal:
    return Decimal(value)


def _bounds(params: Mapping[str, Any]) -> tuple[tuple[Decimal, bool], tuple[Decimal | None, bool]]:
    """`(oldest, inclusive)` and `(latest, inclusive)`; `latest` None means now."""
    inclusive = as_flag(params.get("inclusive"))
    bounds: list[Decimal | None] = []
    for key in ("oldest", "latest"):
        value = text_param(params, key)
        try:
            bounds.append(None if value is None else Decimal(value))
        except InvalidOperation:
            raise Refusal(f"invalid_ts_{key}") from None
    if bounds[0] is not None and not bounds[0].is_finite():
        raise Refusal("invalid_ts_oldest")
    if bounds[1] is not None and not bounds[1].is_finite():
        raise Refusal("invalid_ts_latest")
    return (bounds[0] or Decimal(0), inclusive), (bounds[1], inclusive)


def _within(
    entry: _Entry,
    oldest: tuple[Decimal, bool],
    latest: tuple[Decimal | None, bool],
) -> bool:
    ts = _ts(entry.ts)
    (low, low_inclusive), (high, high_inclusive) = oldest, latest
    if ts < low or (ts == low and not low_inclusive):
        return False
    return high is None or ts < high or (ts == high and high_inclusive)


def _limit(params: Mapping[str, Any], default: int, maximum: int) -> int:
    """`limit` as Slack takes it: the default when absent or under 1, at most `maximum`."""
    value = params.get("limit")
    if value is None or value == "":
        return default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise Refusal("invalid_arguments") from None
    return default if limit < 1 else min(limit, maximum)


def _page(
    entries: Sequence[_Entry], cursor: str | None, limit: int, *, newest_first: bool
) -> tuple[list[_Entry], str]:
    """The page starting at `cursor` (the first page without one) and the cursor after it."""
    start = 0
    if cursor is not None:
        at = _cursor_ts(cursor)
        start = next(
            (
                i
                for i, entry in enumerate(entries)
                if (_ts(entry.ts) <= at if newest_first else _ts(entry.ts) >= at)
            ),
            len(entries),
        )
    page = list(entries[start : start + limit])
    rest = entries[start + limit :]
    return page, _cursor(rest[0].ts) if rest else ""


def _cursor(ts: str) -> str:
    """An opaque cursor as Slack makes them: base64 of `next_ts:<ts without the dot>`."""
    return base64.b64encode(f"{_CURSOR_PREFIX}{ts.replace('.', '')}".encode()).decode()


def _cursor_ts(cursor: str) -> Decimal:
    try:
        decoded = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Refusal("invalid_cursor") from None
    digits = decoded.removeprefix(_CURSOR_PREFIX)
    if not decoded.startswith(_CURSOR_PREFIX) or not (digits.isascii() and digits.isdigit()):
        raise Refusal("invalid_cursor")
    return Decimal(digits) / 1_000_000
