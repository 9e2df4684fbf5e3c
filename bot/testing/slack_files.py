"""The Slack stand-in's file uploads, as a mixin of `SlackStandIn`: `files.getUploadURLExternal`,
the upload URL the bytes are POSTed to, `files.completeUploadExternal`, and the share that puts
each file in its channel or thread.

Source: Slack's Web API documentation (files_upload_v2's three calls). Slack shares the
files after `files.completeUploadExternal` has answered, not at once; with `async_file_shares`
the stand-in does too, each file after its own random delay of up to `MAX_SHARE_DELAY_S`, so the
shares of several files may land in another order than their uploads.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.testing.slack_records import Fault, PendingUpload, Refusal, UploadedFile
from bot.testing.slack_requests import text_param, upload_body

MAX_SHARE_DELAY_S = 0.2


class FileUploads:
    """The file-upload handlers of `SlackStandIn`, and the file shares still to land."""

    # The state, owned and initialised by `SlackStandIn`.
    files: list[UploadedFile]
    async_file_shares: bool
    _uploads: dict[str, PendingUpload]
    _file_count: int
    _share_delays: random.Random
    _pending_shares: set[asyncio.TimerHandle]
    _last_activity: float

    # Provided by `SlackStandIn` and `WebApiMethods`.
    if TYPE_CHECKING:

        @property
        def root_url(self) -> str: ...

        def _take_fault(self, method: str) -> Fault | None: ...

        def _check_can_post(
            self, channel: str | None, *, archived_error: str = "is_archived"
        ) -> str: ...

        def _check_thread(self, channel: str, thread_ts: str | None) -> str | None: ...

        def _next_ts(self) -> str: ...

    @property
    def pending_shares(self) -> int:
        """How many completed uploads Slack has yet to share (only with `async_file_shares`)."""
        return len(self._pending_shares)

    def _cancel_pending_shares(self) -> None:
        """Drop the shares still to land: the stand-in stops."""
        for handle in self._pending_shares:
            handle.cancel()
        self._pending_shares.clear()

    # -- Web API methods and the upload URL --------------------------------------------------

    def _files_get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = text_param(params, "filename")
        length = text_param(params, "length")
        if filename is None or length is None or not length.isdecimal():
            raise Refusal("invalid_arguments")
        self._file_count += 1
        file_id = f"F{self._file_count:010d}"
        self._uploads[file_id] = PendingUpload(filename=filename, length=int(length))
        return {"upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        fault = self._take_fault("upload")
        if fault is not None:
            return web.Response(status=fault.status, text=fault.error or "failed")
        pending = self._uploads.get(request.match_info["file_id"])
        if pending is None:
            return web.Response(status=404, text="file_not_found")
        pending.content = await upload_body(request)
        return web.Response(text=f"OK - {len(pending.content)}")

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
        comment = text_param(params, "initial_comment")
        for file_id, title, pending in uploads:
            del self._uploads[file_id]
            files = [
                UploadedFile(
                    file_id=file_id,
                    filename=pending.filename,
                    title=title,
                    content=pending.content or b"",
                    channel=target,
                    thread_ts=thread_ts,
                    initial_comment=comment,
                )
                for target in targets
            ]
            if self.async_file_shares:
                self._share_later(files)
            else:
                self._share(files)
            shared.append({"id": file_id, "title": title, "name": pending.filename})
        return {"files": shared}

    # -- shares ------------------------------------------------------------------------------

    def _share(self, files: list[UploadedFile]) -> None:
        """Share an uploaded file in each of its targets: it gets its message's ts there."""
        for file in files:
            file.ts, file.at = self._next_ts(), time.monotonic()
            self.files.append(file)
        self._last_activity = time.monotonic()

    def _share_later(self, files: list[UploadedFile]) -> None:
        """Share after a random delay, as Slack does once files.completeUploadExternal answered."""
        delay = self._share_delays.uniform(0.0, MAX_SHARE_DELAY_S)
        loop = asyncio.get_running_loop()

        def land() -> None:
            self._pending_shares.discard(handle)
            self._share(files)

        handle = loop.call_later(delay, land)
        self._pending_shares.add(handle)
