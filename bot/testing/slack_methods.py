"""The Slack stand-in's Web API methods (`auth.test` … `files.completeUploadExternal`) and the
channel rules they enforce, as a mixin of `SlackStandIn`.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.testing.slack_records import (
    BOT_ID,
    BOT_USER_ID,
    BOT_USER_NAME,
    DEFAULT_TZ,
    TEAM_ID,
    Ephemeral,
    PendingUpload,
    PostedMessage,
    Refusal,
    UploadedFile,
    message_json,
)
from bot.testing.slack_requests import as_flag, as_metadata, message_content, text_param

# Message timestamps start here and grow by 100 µs per message, so they are unique, strictly
# increasing and the same in every run (transcripts can be compared).
_TS_BASE_US = 1_700_000_000_000_000
_TS_STEP_US = 100


class WebApiMethods:
    """The Web API method handlers of `SlackStandIn`, over the state it owns."""

    # The conversation state, owned and initialised by `SlackStandIn`.
    members: set[str]
    public_channels: set[str]
    private_channels: set[str]
    archived_channels: set[str]
    users: dict[str, str]
    messages: list[PostedMessage]
    ephemerals: list[Ephemeral]
    files: list[UploadedFile]
    _uploads: dict[str, PendingUpload]
    _ts_count: int
    _file_count: int

    # Provided by `SlackStandIn`.
    if TYPE_CHECKING:

        @property
        def root_url(self) -> str: ...

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
        micros = _TS_BASE_US + _TS_STEP_US * self._ts_count
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
                "is_bot": False,
                "tz": tz,
                "tz_label": label,
                "tz_offset": offset,
            }
        }

    def _files_get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = text_param(params, "filename")
        length = text_param(params, "length")
        if filename is None or length is None or not length.isdigit():
            raise Refusal("invalid_arguments")
        self._file_count += 1
        file_id = f"F{self._file_count:010d}"
        self._uploads[file_id] = PendingUpload(filename=filename, length=int(length))
        return {"upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        items = params.get("files")
        if isinstance(items, str):
            try:
                items = json.loads(items)
            except json.JSONDecodeError:
                raise Refusal("invalid_arguments") from None
        if not isinstance(items, list) or not items:
            raise Refusal("invalid_arguments")
        channel_id = text_param(params, "channel_id")
        channels_param = text_param(params, "channels")
        targets: list[str | None] = (
            [channel_id]
            if channel_id
            else list(channels_param.split(","))
            if channels_param
            else [None]
        )
        for target in targets:
            if target is not None:
                self._check_can_post(target)
        thread_ts = text_param(params, "thread_ts")
        if thread_ts is not None:
            for target in targets:
                self._check_thread(target or "", thread_ts)
        uploads: list[tuple[str, str, PendingUpload]] = []
        for item in items:
            file_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            pending = self._uploads.get(file_id)
            if pending is None or pending.content is None:
                raise Refusal("file_not_found")
            title = str(item.get("title") or pending.filename)
            uploads.append((file_id, title, pending))
        shared: list[dict[str, Any]] = []
        for file_id, title, pending in uploads:
            del self._uploads[file_id]
            for target in targets:
                self.files.append(
                    UploadedFile(
                        file_id=file_id,
                        filename=pending.filename,
                        title=title,
                        content=pending.content or b"",
                        channel=target,
                        thread_ts=thread_ts,
                        initial_comment=text_param(params, "initial_comment"),
                        ts=self._next_ts(),
                        at=time.monotonic(),
                    )
                )
            shared.append({"id": file_id, "title": title, "name": pending.filename})
        return {"files": shared}


def _tz_label_and_offset(tz: str) -> tuple[str, int]:
    try:
        now = datetime.now(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return tz, 0
    offset = now.utcoffset()
    return now.tzname() or tz, int(offset.total_seconds()) if offset is not None else 0
