"""A Slack Web API stand-in: a real HTTP server on 127.0.0.1 that records what the bot sends.

It owns the conversation state the bot can change (messages, threads, edits, ephemeral
responses, uploaded files, channel membership) and answers like Slack does: HTTP 200 with
`{"ok": false, "error": …}` for refusals, HTTP 429 with `Retry-After` when told to rate-limit.
Messages are refused as Slack refuses them (`invalid_blocks`, `msg_too_long`, … see
`_check_message`), and the refused call is recorded in `calls` like any other.
Point `AsyncWebClient(base_url=slack.base_url)` at it; use `slack.response_url()` as the
`response_url` of signed slash commands and interactions.

It also speaks Socket Mode: `apps.connections.open` (with an `xapp-` app-level token) hands out a
`ws://` URL on the same port; the WebSocket greets with `hello`, and `send_slash_command()`
delivers a `slash_commands` envelope and returns the payload of the app's acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import BodyPartReader, WSCloseCode, WSMsgType, web
from aiohttp.typedefs import Handler, Middleware

from bot.testing.loopback import LoopbackServer

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

# Message timestamps start here and grow by 100 µs per message, so they are unique, strictly
# increasing and the same in every run (transcripts can be compared).
_TS_BASE_US = 1_700_000_000_000_000
_TS_STEP_US = 100


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
class _Fault:
    error: str | None
    status: int
    retry_after: int | None
    times: int
    after: int = 0
    """Calls to let through before failing."""


@dataclass
class _PendingUpload:
    filename: str
    length: int
    content: bytes | None = None


class _Refusal(Exception):
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


class SlackStandIn:
    """Slack Web API, `response_url` and file-upload endpoints on one local port."""

    def __init__(
        self,
        *,
        member_of: Iterable[str] = ("C_GENERAL",),
        public: Iterable[str] = ("C_GENERAL", "C_OTHER"),
        private: Iterable[str] = ("G_PRIVATE",),
        archived: Iterable[str] = (),
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.members: set[str] = set(member_of)
        self.public_channels: set[str] = set(public)
        self.private_channels: set[str] = set(private)
        self.archived_channels: set[str] = set(archived)
        self.users: dict[str, str] = dict(users or {})
        self.latency_s: float = 0.0
        self.calls: list[SlackCall] = []
        self.messages: list[PostedMessage] = []
        self.ephemerals: list[Ephemeral] = []
        self.files: list[UploadedFile] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._uploads: dict[str, _PendingUpload] = {}
        self._ts_count = 0
        self._file_count = 0
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._server = LoopbackServer("SlackStandIn")
        # Socket Mode: tickets handed out by `apps.connections.open`, open sockets (oldest
        # first), acknowledgements received, and the envelopes still waiting for theirs.
        self.socket_acks: list[dict[str, Any]] = []
        self._tickets: set[str] = set()
        self._ticket_count = 0
        self._sockets: list[web.WebSocketResponse] = []
        self._pending_acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._envelope_count = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._track_activity()])
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get(SOCKET_MODE_PATH, self._socket_mode)
        await self._server.start(app)
        self._last_activity = time.monotonic()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for ws in list(self._sockets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown"), 1.0
                )
        for pending in self._pending_acks.values():
            pending.cancel()
        await self._server.stop()

    @property
    def root_url(self) -> str:
        return self._server.url

    @property
    def base_url(self) -> str:
        """The Web API base, for `AsyncWebClient(base_url=…)`."""
        return f"{self.root_url}/api/"

    def response_url(self, name: str = "cmd") -> str:
        """A `response_url` to put in a slash command or interaction payload."""
        return f"{self.root_url}/response/{name}"

    # -- test controls -----------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Answer the next `times` calls of `method` with a failure instead of doing them.

        `status=429` answers `{"ok": false, "error": "ratelimited"}` (plus `Retry-After` when
        given); any other status answers `error` (default `fatal_error`). `method` may also be
        `"response_url"` or `"upload"` for those endpoints (`status` is their HTTP status).
        With `after=N` the next N calls go through first (fail the third reply: `after=2`
        counting the parent as one).
        """
        fault = _Fault(error, status, retry_after, times, after)
        self._faults.setdefault(method, []).append(fault)

    # The polling helpers take `timeout` so a test reads as one call; the deadline is theirs.
    async def wait_for(
        self,
        predicate: Callable[[SlackStandIn], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Poll until `predicate(self)` holds; on timeout fail with what Slack received."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout} s\n{self.summary()}")
            await asyncio.sleep(0.01)

    async def wait_idle(self, quiet_s: float = 0.3, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Return once no request has been received or in progress for `quiet_s` seconds."""
        deadline = time.monotonic() + timeout
        while self._in_flight or time.monotonic() - self._last_activity < quiet_s:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"Slack traffic did not stop within {timeout} s\n{self.summary()}"
                )
            await asyncio.sleep(0.01)

    # -- Socket Mode -------------------------------------------------------------------------

    @property
    def socket_count(self) -> int:
        """How many Socket Mode connections are open (each was greeted with `hello`)."""
        return len(self._sockets)

    async def socket_connected(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Return once an app holds a Socket Mode connection and has been sent `hello`."""
        deadline = time.monotonic() + timeout
        while not self._sockets:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"no Socket Mode connection within {timeout} s\n{self.summary()}"
                )
            await asyncio.sleep(0.01)

    async def send_slash_command(
        self,
        text: str,
        *,
        channel_id: str = "C_GENERAL",
        user_id: str = "U_ALICE",
        command: str = "/algo-errors",
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Deliver a slash command over Socket Mode, like Slack does, and wait for the ack.

        Returns the `payload` of the app's acknowledgement (`{}` for an empty ack): the
        immediate reply Slack would show, as the body of an HTTP ack would be.
        """
        deadline = time.monotonic() + timeout
        await self.socket_connected(timeout)
        ws = self._sockets[-1]
        self._envelope_count += 1
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": {
                "token": "deprecated-verification-token",
                "team_id": TEAM_ID,
                "team_domain": TEAM_DOMAIN,
                "channel_id": channel_id,
                "channel_name": _channel_name(channel_id),
                "user_id": user_id,
                "user_name": user_id.lower().removeprefix("u_"),
                "command": command,
                "text": text,
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": self.response_url(),
                "trigger_id": f"{self._envelope_count}.{self._envelope_count}.{uuid.uuid4().hex}",
            },
        }
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending_acks[envelope_id] = ack
        try:
            self._last_activity = time.monotonic()
            await ws.send_str(json.dumps(envelope))
            remaining = max(deadline - time.monotonic(), 0.0)
            try:
                message = await asyncio.wait_for(asyncio.shield(ack), remaining)
            except TimeoutError:
                raise AssertionError(
                    f"no acknowledgement of {command} {text!r} within {timeout} s "
                    f"(Slack would show a timeout error)\n{self.summary()}"
                ) from None
        finally:
            self._pending_acks.pop(envelope_id, None)
        payload = message.get("payload")
        return dict(payload) if isinstance(payload, dict) else {}

    # -- queries -----------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    def thread(self, ts: str) -> list[PostedMessage]:
        """The replies in the thread of the parent message `ts`, oldest first."""
        return [m for m in self.messages if m.thread_ts == ts]

    def top_level(self, channel: str) -> list[PostedMessage]:
        return [m for m in self.messages if m.channel == channel and m.thread_ts is None]

    def summary(self) -> str:
        """One line per call received, for assertion messages."""
        lines = [f"{len(self.calls)} Web API call(s), {len(self.ephemerals)} ephemeral(s):"]
        for call in self.calls:
            shown = {
                key: _shorten(str(call.params[key]))
                for key in ("channel", "channel_id", "ts", "thread_ts", "user", "text")
                if call.params.get(key) not in (None, "")
            }
            outcome = "ok" if call.response.get("ok") else call.response.get("error", "?")
            errors = call.response.get("errors") or []
            if errors:
                more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
                outcome += f": {errors[0]}{more}"
            lines.append(f"  {call.method} {shown} -> {call.status} {outcome}")
        for ephemeral in self.ephemerals:
            lines.append(f"  ephemeral via {ephemeral.via}: {_shorten(ephemeral.text)!r}")
        for ack in self.socket_acks:
            payload = ack.get("payload")
            answer = _shorten(str(payload.get("text", ""))) if isinstance(payload, dict) else ""
            lines.append(f"  socket ack {ack.get('envelope_id')}: {answer!r}")
        return "\n".join(lines)

    # -- HTTP plumbing -----------------------------------------------------------------------

    def _track_activity(self) -> Middleware:
        @web.middleware
        async def track(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path == SOCKET_MODE_PATH:
                # A socket stays open: it is not a request in flight. Its messages count as
                # activity where they are sent and received.
                return await handler(request)
            self._in_flight += 1
            self._last_activity = time.monotonic()
            try:
                if self.latency_s > 0:
                    await asyncio.sleep(self.latency_s)
                return await handler(request)
            finally:
                self._in_flight -= 1
                self._last_activity = time.monotonic()

        return track

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        if fault.after > 0:
            fault.after -= 1
            return None
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = SlackCall(method=method, params={}, at=time.monotonic())
        self.calls.append(call)
        headers: dict[str, str] = {}
        try:
            call.params = await _request_params(request)
            status, body = self._answer(method, call.params, request.headers, headers)
        except _Refusal as refusal:
            status, body = 200, refusal.body()
        call.status, call.response = status, body
        return web.json_response(body, status=status, headers=headers)

    def _answer(
        self,
        method: str,
        params: dict[str, Any],
        request_headers: Mapping[str, str],
        response_headers: dict[str, str],
    ) -> tuple[int, dict[str, Any]]:
        authorization = request_headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            raise _Refusal("not_authed")
        if method == "apps.connections.open":
            # Only an app-level token may open a Socket Mode connection.
            if authorization.startswith("Bearer xox"):
                raise _Refusal("not_allowed_token_type")
            if not authorization.startswith("Bearer xapp-"):
                raise _Refusal("invalid_auth")
        elif not authorization.startswith("Bearer xox"):
            raise _Refusal("invalid_auth")
        fault = self._take_fault(method)
        if fault is not None:
            if fault.retry_after is not None:
                response_headers["Retry-After"] = str(fault.retry_after)
            default_error = "ratelimited" if fault.status == 429 else "fatal_error"
            return fault.status, {"ok": False, "error": fault.error or default_error}
        handler = self._methods().get(method)
        if handler is None:
            raise _Refusal("unknown_method")
        if method == "auth.test":
            response_headers["x-oauth-scopes"] = BOT_SCOPES
        return 200, {"ok": True, **handler(params)}

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "conversations.join": self._conversations_join,
            "conversations.info": self._conversations_info,
            "users.info": self._users_info,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "apps.connections.open": self._apps_connections_open,
        }

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
                raise _Refusal("invalid_payload")
            call.params = payload
            text = _text(payload, "text") or ""
            blocks = _blocks(payload.get("blocks"))
            delete_original = _flag(payload.get("delete_original"))
            if not delete_original or text or blocks:
                _check_message(text, blocks)
        except _Refusal as refusal:
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
                replace_original=_flag(payload.get("replace_original")),
                delete_original=delete_original,
                response_name=request.match_info["name"],
                at=time.monotonic(),
            )
        )
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        fault = self._take_fault("upload")
        if fault is not None:
            return web.Response(status=fault.status, text=fault.error or "failed")
        pending = self._uploads.get(request.match_info["file_id"])
        if pending is None:
            return web.Response(status=404, text="file_not_found")
        pending.content = await _upload_body(request)
        return web.Response(text=f"OK - {len(pending.content)}")

    async def _socket_mode(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid_ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self._last_activity = time.monotonic()
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._sockets),
                    "debug_info": {
                        "host": "applink-stand-in",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": APP_ID},
                }
            )
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._socket_message(message.data)
        finally:
            self._sockets.remove(ws)
        return ws

    def _socket_message(self, data: str) -> None:
        """An app's message over the socket: an acknowledgement `{"envelope_id", "payload"}`."""
        self._last_activity = time.monotonic()
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            return
        if not isinstance(message, dict) or "envelope_id" not in message:
            return
        self.socket_acks.append(message)
        pending = self._pending_acks.get(str(message["envelope_id"]))
        if pending is not None and not pending.done():
            pending.set_result(message)

    # -- channels ----------------------------------------------------------------------------

    def _known(self, channel: str) -> bool:
        return channel in self.public_channels | self.private_channels | self.archived_channels

    def _check_can_post(self, channel: str | None, *, archived_error: str = "is_archived") -> str:
        """The channel if the bot may post there, else the refusal Slack gives."""
        if not channel or not self._known(channel):
            raise _Refusal("channel_not_found")
        if channel in self.private_channels and channel not in self.members:
            raise _Refusal("channel_not_found")
        if channel in self.archived_channels:
            raise _Refusal(archived_error)
        if channel not in self.members:
            raise _Refusal("not_in_channel")
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
        raise _Refusal("thread_not_found")

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

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        self._ticket_count += 1
        ticket = str(self._ticket_count)
        self._tickets.add(ticket)
        ws_root = self.root_url.replace("http://", "ws://", 1)
        return {"url": f"{ws_root}{SOCKET_MODE_PATH}?ticket={ticket}"}

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._check_can_post(_text(params, "channel"))
        text, blocks = _content(params)
        message = PostedMessage(
            channel=channel,
            ts=self._next_ts(),
            thread_ts=self._check_thread(channel, _text(params, "thread_ts")),
            text=text,
            blocks=blocks,
            reply_broadcast=_flag(params.get("reply_broadcast")),
            at=time.monotonic(),
        )
        self.messages.append(message)
        return {"channel": channel, "ts": message.ts, "message": _message_json(message)}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        # Slack answers `is_inactive` (not `is_archived`) when updating in an archived channel.
        channel = self._check_can_post(_text(params, "channel"), archived_error="is_inactive")
        ts = _text(params, "ts")
        message = next((m for m in self.messages if m.channel == channel and m.ts == ts), None)
        if message is None:
            raise _Refusal("message_not_found")
        text, blocks = _content(params)
        message.updates.append(dict(params))
        if "text" in params:
            message.text = text
        if "blocks" in params:
            message.blocks = blocks
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": _message_json(message),
        }

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._check_can_post(_text(params, "channel"))
        user = _text(params, "user")
        if user is None:
            raise _Refusal("user_not_in_channel")
        text, blocks = _content(params)
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
        channel = _text(params, "channel")
        if channel is None or not self._known(channel):
            raise _Refusal("channel_not_found")
        if channel in self.private_channels:
            raise _Refusal("method_not_supported_for_channel_type")
        if channel in self.archived_channels:
            raise _Refusal("is_archived")
        if channel in self.members:
            return {
                "channel": self._channel_info(channel),
                "warning": "already_in_channel",
                "response_metadata": {"warnings": ["already_in_channel"]},
            }
        self.members.add(channel)
        return {"channel": self._channel_info(channel)}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _text(params, "channel")
        if channel is None or not self._known(channel):
            raise _Refusal("channel_not_found")
        if channel in self.private_channels and channel not in self.members:
            raise _Refusal("channel_not_found")
        return {"channel": self._channel_info(channel)}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = _text(params, "user")
        if user is None:
            raise _Refusal("user_not_found")
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
        filename = _text(params, "filename")
        length = _text(params, "length")
        if filename is None or length is None or not length.isdigit():
            raise _Refusal("invalid_arguments")
        self._file_count += 1
        file_id = f"F{self._file_count:010d}"
        self._uploads[file_id] = _PendingUpload(filename=filename, length=int(length))
        return {"upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        items = params.get("files")
        if isinstance(items, str):
            try:
                items = json.loads(items)
            except json.JSONDecodeError:
                raise _Refusal("invalid_arguments") from None
        if not isinstance(items, list) or not items:
            raise _Refusal("invalid_arguments")
        channel_id = _text(params, "channel_id")
        channels_param = _text(params, "channels")
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
        thread_ts = _text(params, "thread_ts")
        if thread_ts is not None:
            for target in targets:
                self._check_thread(target or "", thread_ts)
        uploads: list[tuple[str, str, _PendingUpload]] = []
        for item in items:
            file_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            pending = self._uploads.get(file_id)
            if pending is None or pending.content is None:
                raise _Refusal("file_not_found")
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
                        initial_comment=_text(params, "initial_comment"),
                        ts=self._next_ts(),
                        at=time.monotonic(),
                    )
                )
            shared.append({"id": file_id, "title": title, "name": pending.filename})
        return {"files": shared}


async def _request_params(request: web.Request) -> dict[str, Any]:
    """Query, form and JSON parameters merged, as Slack accepts any of them."""
    params: dict[str, Any] = dict(request.query)
    if not request.can_read_body:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            raise _Refusal("invalid_json") from None
        if not isinstance(body, dict):
            raise _Refusal("invalid_json")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = value.file.read()
            else:
                params[key] = value if isinstance(value, str) else bytes(value)
    return params


async def _upload_body(request: web.Request) -> bytes:
    """The uploaded bytes: the raw body, or the first part of a multipart body."""
    if request.content_type != "multipart/form-data":
        return await request.read()
    reader = await request.multipart()
    part = await reader.next()
    if isinstance(part, BodyPartReader):
        return bytes(await part.read(decode=True))
    return b""


def _text(params: Mapping[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    return str(value)


def _flag(value: Any) -> bool:
    """Slack booleans arrive as JSON booleans or as `"1"`/`"true"` in query and form."""
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


def _blocks(value: Any) -> list[dict[str, Any]]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise _Refusal("invalid_blocks", ["blocks are not valid JSON"]) from None
    if not isinstance(value, list) or not all(isinstance(block, dict) for block in value):
        raise _Refusal("invalid_blocks", ["must be an array of objects [json-pointer:/blocks]"])
    return value


def _content(params: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text = _text(params, "text") or ""
    blocks = _blocks(params.get("blocks"))
    _check_message(text, blocks)
    return text, blocks


MAX_TEXT_CHARS = 40_000
MAX_BLOCKS = 50
# Slack's undocumented ceiling on the characters of all the blocks' text together.
MAX_BLOCKS_TEXT_CHARS = 12_000
BLOCK_TYPES = frozenset(
    {"section", "header", "context", "actions", "divider", "rich_text", "image", "markdown"}
    | {"input", "file", "video"}
)
_TEXT_TYPES = ("mrkdwn", "plain_text")


def _check_message(text: str, blocks: list[dict[str, Any]]) -> None:
    """Refuse, as Slack does, a message `text` and `blocks` that Slack would refuse.

    Source: shared/reference/slack-platform.md §7 (the `no_text`, `msg_too_long` and
    `invalid_blocks` errors of chat.postMessage, chat.update and chat.postEphemeral, and the
    undocumented `msg_blocks_too_long` at about 12–13k block characters, slackapi/bolt-js#2509)
    and §8 (message limits). `invalid_blocks` lists every problem with a JSON pointer to it.
    """
    if not text and not blocks:
        raise _Refusal("no_text")
    if len(text) > MAX_TEXT_CHARS:
        raise _Refusal("msg_too_long", [f"text has {len(text)} characters, over {MAX_TEXT_CHARS}"])
    problems: list[str] = []

    def bad(what: str, at: str) -> None:
        problems.append(f"{what} [json-pointer:/blocks{at}]")

    def items(obj: Any, key: str, at: str, low: int = 0, high: int | None = None) -> list[Any]:
        value = obj.get(key, []) if isinstance(obj, dict) else []
        count = len(value) if isinstance(value, list) else -1
        if count < low or (high is not None and count > high):
            most = f" and at most {high}" if high is not None else ""
            bad(f"{key} must have at least {low}{most} items", f"{at}/{key}")
        return value if isinstance(value, list) else []

    def text_object(obj: Any, at: str, limit: int | None, kinds: tuple[str, ...]) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in kinds:
            bad(f"must be a {' or '.join(kinds)} text object", at)
        elif not isinstance(obj.get("text"), str) or not obj["text"].strip():
            bad("text must not be empty or blank", f"{at}/text")
        elif limit is not None and len(obj["text"]) > limit:
            bad(f"text must be at most {limit} characters", f"{at}/text")

    def at_most(obj: Any, key: str, limit: int, at: str) -> None:
        if isinstance(obj, dict) and len(str(obj.get(key, ""))) > limit:
            bad(f"{key} must be at most {limit} characters", f"{at}/{key}")

    def element(e: Any, at: str) -> None:
        at_most(e, "action_id", 255, at)
        if isinstance(e, dict) and e.get("type") == "button":
            text_object(e.get("text"), f"{at}/text", 75, ("plain_text",))
            at_most(e, "value", 2000, at)
        elif isinstance(e, dict) and e.get("type") == "static_select":
            for k, option in enumerate(items(e, "options", at, high=100)):
                text_object(_get(option, "text"), f"{at}/options/{k}/text", 75, _TEXT_TYPES)
                at_most(option, "value", 150, f"{at}/options/{k}")

    if len(blocks) > MAX_BLOCKS:
        bad(f"no more than {MAX_BLOCKS} items allowed", "")
    for i, block in enumerate(blocks):
        at, kind = f"/{i}", block.get("type")
        if kind not in BLOCK_TYPES:
            bad(f"unknown block type {kind!r}", f"{at}/type")
            continue
        at_most(block, "block_id", 255, at)
        if kind == "header":
            text_object(block.get("text"), f"{at}/text", 150, ("plain_text",))
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                bad("a section needs text or fields", at)
            if "text" in block:
                text_object(block["text"], f"{at}/text", 3000, _TEXT_TYPES)
            for j, item in enumerate(items(block, "fields", at, high=10)):
                text_object(item, f"{at}/fields/{j}", 2000, _TEXT_TYPES)
            if "accessory" in block:
                element(block["accessory"], f"{at}/accessory")
        elif kind == "context":
            for j, item in enumerate(items(block, "elements", at, 1, 10)):
                if _get(item, "type") != "image":
                    text_object(item, f"{at}/elements/{j}", None, _TEXT_TYPES)
        elif kind == "actions":
            for j, item in enumerate(items(block, "elements", at, 1, 25)):
                element(item, f"{at}/elements/{j}")
        elif kind == "input":
            element(block.get("element"), f"{at}/element")
        elif kind == "rich_text":
            for j, part in enumerate(items(block, "elements", at, 1)):
                if _get(part, "type") in ("rich_text_preformatted", "rich_text_section"):
                    for k, run in enumerate(items(part, "elements", f"{at}/elements/{j}", 1)):
                        if _get(run, "type") == "text" and not _get(run, "text"):
                            bad("text must not be empty", f"{at}/elements/{j}/elements/{k}/text")
    if problems:
        raise _Refusal("invalid_blocks", problems)
    total = sum(len(piece) for piece in _block_texts(blocks))
    if total > MAX_BLOCKS_TEXT_CHARS:
        raise _Refusal(
            "msg_blocks_too_long",
            [f"blocks have {total} characters of text, over {MAX_BLOCKS_TEXT_CHARS}"],
        )


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _block_texts(value: Any) -> Iterable[str]:
    """Every string under a `text` key in the blocks: text objects and rich text runs."""
    if isinstance(value, list):
        for item in value:
            yield from _block_texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from _block_texts(item)


def _message_json(message: PostedMessage) -> dict[str, Any]:
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


def _tz_label_and_offset(tz: str) -> tuple[str, int]:
    try:
        now = datetime.now(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return tz, 0
    offset = now.utcoffset()
    return now.tzname() or tz, int(offset.total_seconds()) if offset is not None else 0


def _shorten(text: str, limit: int = 60) -> str:
    one_line = text.replace("\n", "⏎")
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _channel_name(channel: str) -> str:
    """The name the stand-in gives a channel id (`C_GENERAL` → `general`)."""
    return channel.lower().removeprefix("c_").removeprefix("g_")
