"""What the Slack stand-in records and answers with: its calls, messages, ephemerals and files,
its fault, hold and pending-upload records, the refusal it raises, and the workspace it pretends
to be.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"
BOT_USER_NAME = "algo-errors"
APP_ID = "A0001"
TEAM_DOMAIN = "algo-errors-demo"
SOCKET_MODE_PATH = "/socket-mode"
DEFAULT_TZ = "Europe/Berlin"


@dataclass
class SlackCall:
    """One Web API call as received: the merged query, form and JSON parameters."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    connection: object = None
    """The client's address and port: calls on one kept-alive connection share it."""


@dataclass
class PostedMessage:
    """A message in a channel; `thread_ts` is set for a thread reply.

    `metadata` is the message metadata it was posted (or last updated) with:
    `{"event_type": str, "event_payload": {...}}`, or None.
    """

    channel: str
    ts: str
    thread_ts: str | None
    text: str
    blocks: list[dict[str, Any]]
    reply_broadcast: bool = False
    updates: list[dict[str, Any]] = field(default_factory=list)
    at: float = 0.0
    metadata: dict[str, Any] | None = None


@dataclass
class Ephemeral:
    """A message only one user sees: a `response_url` POST or a `chat.postEphemeral` call."""

    via: str
    channel: str | None
    user: str | None
    text: str
    blocks: list[dict[str, Any]]
    response_type: str | None = None
    replace_original: bool = False
    delete_original: bool = False
    response_name: str | None = None
    at: float = 0.0


@dataclass
class UploadedFile:
    """A file shared by `files.completeUploadExternal`.

    `ts` is the ts of the message that shared it (given when shared): it orders the file among
    the channel's messages or the thread's replies, as history shows it.
    """

    file_id: str
    filename: str
    title: str
    content: bytes
    channel: str | None
    thread_ts: str | None
    initial_comment: str | None
    ts: str = ""
    at: float = 0.0


@dataclass
class Fault:
    error: str | None
    status: int
    retry_after: int | None
    times: int
    after: int = 0
    """Calls to let through before failing."""
    lost_answer: bool = False
    """The call is carried out in full, then its answer is lost: the connection is reset
    (`late_s` None) or the answer comes `late_s` seconds late."""
    late_s: float | None = None


@dataclass
class PendingUpload:
    filename: str
    length: int
    content: bytes | None = None


class HeldCall:
    """A hold on the next call of one Web API method, from `SlackStandIn.hold(method)`.

    It owns the moment that call's HTTP answer leaves: Slack carries the call out in full (a
    message is stored, a refusal recorded), then the answer waits until `release()`. That is
    "Slack kept the message, the client died before reading the answer". A held call does not
    count as in flight for `wait_idle()`.
    """

    def __init__(self, method: str, describe: Callable[[], str]) -> None:
        self.method = method
        self.call: SlackCall | None = None
        """The held call once it has arrived and been carried out."""
        self._describe = describe
        self._arrived = asyncio.Event()
        self._released = asyncio.Event()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def release(self) -> None:
        """Let the answer go (idempotent). Released before the call arrives, nothing is held."""
        self._released.set()

    # The deadline is the helper's own, as for `SlackStandIn.wait_for`.
    async def arrived(self, timeout: float = 5.0) -> SlackCall:  # noqa: ASYNC109
        """Wait until the held call has been carried out (its answer not yet sent); return it."""
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no {self.method} call arrived to hold within {timeout} s\n{self._describe()}"
            ) from None
        assert self.call is not None
        return self.call

    def hold(self, call: SlackCall) -> None:
        """Used by the stand-in: `call` was carried out and its answer now waits."""
        self.call = call
        self._arrived.set()

    async def until_released(self) -> None:
        """Used by the stand-in: wait for `release()`."""
        await self._released.wait()


class Refusal(Exception):
    """Slack refused the call: answered as HTTP 200 `{"ok": false, "error": error}`.

    `errors` says what is wrong and where, as Slack's own `errors` do for `invalid_blocks`;
    `fields` are further top-level fields of the answer (`needed` and `provided` for
    `missing_scope`).
    """

    def __init__(
        self,
        error: str,
        errors: list[str] | None = None,
        *,
        fields: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.errors = list(errors or [])
        self.fields = dict(fields or {})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.errors:
            body["errors"] = self.errors
        body.update(self.fields)
        return body


def message_json(message: PostedMessage, *, with_metadata: bool = True) -> dict[str, Any]:
    """The message object Slack answers with; `metadata` only if it has some and is asked for."""
    body: dict[str, Any] = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "ts": message.ts,
        "text": message.text,
        "blocks": message.blocks,
    }
    if message.thread_ts is not None:
        body["thread_ts"] = message.thread_ts
    if with_metadata and message.metadata is not None:
        body["metadata"] = message.metadata
    return body
