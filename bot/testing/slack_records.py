"""What the Slack stand-in records and answers with: its calls, messages, ephemerals and files,
its fault and pending-upload records, the refusal it raises, and the workspace it pretends to be.
"""

from __future__ import annotations

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
# Granted scopes, as Slack reports them in `x-oauth-scopes`. Without `chat:write.public` the bot
# must join a public channel before posting, which is what the stand-in enforces.
BOT_SCOPES = "commands,chat:write,channels:join,files:write,users:read"


@dataclass
class SlackCall:
    """One Web API call as received: the merged query, form and JSON parameters."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class PostedMessage:
    """A message in a channel; `thread_ts` is set for a thread reply."""

    channel: str
    ts: str
    thread_ts: str | None
    text: str
    blocks: list[dict[str, Any]]
    reply_broadcast: bool = False
    updates: list[dict[str, Any]] = field(default_factory=list)
    at: float = 0.0


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
    """A file shared by `files.completeUploadExternal`; `ts` orders it among thread replies."""

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


@dataclass
class PendingUpload:
    filename: str
    length: int
    content: bytes | None = None


class Refusal(Exception):
    """Slack refused the call: answered as HTTP 200 `{"ok": false, "error": error}`.

    `errors` says what is wrong and where, as Slack's own `errors` do for `invalid_blocks`.
    """

    def __init__(self, error: str, errors: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.errors = list(errors or [])

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.errors:
            body["errors"] = self.errors
        return body


def message_json(message: PostedMessage) -> dict[str, Any]:
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
    return body
