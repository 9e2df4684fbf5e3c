"""The Slack stand-in's chat, conversation and user Web API methods (`auth.test` …
`users.info`), its `response_url` endpoint, and the channel rules they enforce, as a mixin of
`SlackStandIn`. File uploads are in `slack_files`, history in `slack_history`.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from bot.testing.slack_limits import check_message
from bot.testing.slack_records import (
    BOT_ID,
    BOT_USER_ID,
    BOT_USER_NAME,
    DEFAULT_TZ,
    TEAM_ID,
    Ephemeral,
    Fault,
    PostedMessage,
    Refusal,
    SlackCall,
    message_json,
)
from bot.testing.slack_requests import (
    as_blocks,
    as_flag,
    as_metadata,
    message_content,
    text_param,
)

# Message timestamps are the clock's, as Slack's are (a bot may read history back to a
# moment: `oldest`), and at least 100 µs apart, so they are unique and strictly increasing.
_TS_STEP_US = 100


class WebApiMethods:
    """The Web API method and `response_url` handlers of `SlackStandIn`, over its state."""

    # The conversation state, owned and initialised by `SlackStandIn`.
    members: set[str]
    public_channels: set[str]
    private_channels: set[str]
    archived_channels: set[str]
    users: dict[str, str]
    bots: set[str]
    app_users: set[str]
    messages: list[PostedMessage]
    ephemerals: list[Ephemeral]
    calls: list[SlackCall]
    _ts_count: int
    _last_ts_us: int

    # Provided by `SlackStandIn`.
    if TYPE_CHECKING:

        def _take_fault(self, method: str) -> Fault | None: ...

    # -- channels ----------------------------------------------------------------------------

    def _known(self, channel: str) -> bool:
        return channel in self.public_channels | self.private_channels | self.archived_channels

    def _check_can_post(self, channel: str | None, *, archived_error: str = "is_archived") -> str:
        """The channel if the bot may post there, else the refusal Slack gives."""
        if not channel or not self._known(channel):
            raise Refusal("channel_not_found")
        if channel in self.private_channels and channel not in self.members:
            raise Refusal("channel_not_found")
        if channel in self.archived_channels:
            raise Refusal(archived_error)
        if channel not in self.members:
            raise Refusal("not_in_channel")
        return channel

    def _channel_info(self, channel: str) -> dict[str, Any]:
        is_private = channel in self.private_channels
        return {
            "id": channel,
            "name": channel.lower().removeprefix("c_").removeprefix("g_"),
            "is_channel": not is_private,
            "is_group": is_private,
            "is_private": is_private,
            "is_archived": channel in self.archived_channels,
            "is_member": channel in self.members,
        }

    def _check_thread(self, channel: str, thread_ts: str | None) -> str | None:
        if not thread_ts:
            return None
        for message in self.messages:
            if message.ts == thread_ts and message.channel == channel:
                if message.thread_ts is None:
                    return thread_ts
                break
        raise Refusal("thread_not_found")

    def _next_ts(self) -> str:
        self._ts_count += 1
        micros = max(self._last_ts_us + _TS_STEP_US, time.time_ns() // 1000)
        self._last_ts_us = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    # -- Web API methods ---------------------------------------------------------------------

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://algo-errors-demo.slack.com/",
            "team": "Algo Errors Demo",
            "user": BOT_USER_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._check_can_post(text_param(params, "channel"))
        text, blocks = message_content(params)
        metadata = as_metadata(params.get("metadata"))
        message = PostedMessage(
            channel=channel,
            ts=self._next_ts(),
            thread_ts=self._check_thread(channel, text_param(params, "thread_ts")),
            text=text,
            blocks=blocks,
            reply_broadcast=as_flag(params.get("reply_broadcast")),
            at=time.monotonic(),
            metadata=metadata,
        )
        self.messages.append(message)
        return {"channel": channel, "ts": message.ts, "message": message_json(message)}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        # Slack answers `is_inactive` (not `is_archived`) when updating in an archived channel.
        channel = self._check_can_post(text_param(params, "channel"), archived_error="is_inactive")
        ts = text_param(params, "ts")
        message = next((m for m in self.messages if m.channel == channel and m.ts == ts), None)
        if message is None:
            raise Refusal("message_not_found")
        text, blocks = message_content(params)
        metadata = as_metadata(params.get("metadata"))
        message.updates.append(dict(params))
        if "text" in params:
            message.text = text
        if "blocks" in params:
            message.blocks = blocks
        if metadata is not None:
            message.metadata = metadata
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": message_json(message),
        }

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._check_can_post(text_param(params, "channel"))
        user = text_param(params, "user")
        if user is None:
            raise Refusal("user_not_in_channel")
        text, blocks = message_content(params)
        self.ephemerals.append(
            Ephemeral(
                via="chat.postEphemeral",
                channel=channel,
                user=user,
                text=text,
                blocks=blocks,
                at=time.monotonic(),
            )
        )
        return {"message_ts": self._next_ts()}

    def _conversations_join(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = text_param(params, "channel")
        if channel is None or not self._known(channel):
            raise Refusal("channel_not_found")
        if channel in self.private_channels:
            raise Refusal("method_not_supported_for_channel_type")
        if channel in self.archived_channels:
            raise Refusal("is_archived")
        if channel in self.members:
            return {
                "channel": self._channel_info(channel),
                "warning": "already_in_channel",
                "response_metadata": {"warnings": ["already_in_channel"]},
            }
        self.members.add(channel)
        return {"channel": self._channel_info(channel)}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = text_param(params, "channel")
        if channel is None or not self._known(channel):
            raise Refusal("channel_not_found")
        if channel in self.private_channels and channel not in self.members:
            raise Refusal("channel_not_found")
        return {"channel": self._channel_info(channel)}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = text_param(params, "user")
        if user is None:
            raise Refusal("user_not_found")
        tz = self.users.get(user, DEFAULT_TZ)
        label, offset = _tz_label_and_offset(tz)
        return {
            "user": {
                "id": user,
                "team_id": TEAM_ID,
                "name": user.lower(),
                "real_name": user,
                "is_bot": user == BOT_USER_ID or user in self.bots,
                "is_app_user": user in self.app_users,
                "tz": tz,
                "tz_label": label,
                "tz_offset": offset,
            }
        }

    # -- response_url ------------------------------------------------------------------------

    async def _response_url(self, request: web.Request) -> web.Response:
        """A JSON POST to a `response_url`, recorded in `calls` as method `"response_url"`.

        Slack answers a refusal with an HTTP 400 whose body is the error (`invalid_blocks`).
        """
        call = SlackCall(method="response_url", params={}, at=time.monotonic())
        self.calls.append(call)
        fault = self._take_fault("response_url")
        if fault is not None:
            call.status = fault.status
            call.response = {"ok": False, "error": fault.error or "failed"}
            return web.Response(status=fault.status, text=fault.error or "failed")
        try:
            payload = await request.json()
        except json.JSONDecodeError:
            payload = None
        try:
            if not isinstance(payload, dict):
                raise Refusal("invalid_payload")
            call.params = payload
            text = text_param(payload, "text") or ""
            blocks = as_blocks(payload.get("blocks"))
            delete_original = as_flag(payload.get("delete_original"))
            if not delete_original or text or blocks:
                check_message(text, blocks)
        except Refusal as refusal:
            call.status, call.response = 400, refusal.body()
            return web.Response(status=400, text=refusal.error)
        call.response = {"ok": True}
        self.ephemerals.append(
            Ephemeral(
                via="response_url",
                channel=None,
                user=None,
                text=text,
                blocks=blocks,
                response_type=payload.get("response_type"),
                replace_original=as_flag(payload.get("replace_original")),
                delete_original=delete_original,
                response_name=request.match_info["name"],
                at=time.monotonic(),
            )
        )
        return web.Response(text="ok")


def _tz_label_and_offset(tz: str) -> tuple[str, int]:
    try:
        now = datetime.now(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return tz, 0
    offset = now.utcoffset()
    return now.tzname() or tz, int(offset.total_seconds()) if offset is not None else 0
