"""A Slack Web API stand-in: a real HTTP server on 127.0.0.1 that records what the bot sends.

It owns the conversation state the bot can change (messages, threads, edits, ephemeral
responses, uploaded files, channel membership) and answers like Slack does: HTTP 200 with
`{"ok": false, "error": …}` for refusals, HTTP 429 with `Retry-After` when told to rate-limit.
Messages are refused as Slack refuses them (`invalid_blocks`, `msg_too_long`, … see
`slack_limits.check_message`), and the refused call is recorded in `calls` like any other.
Point `AsyncWebClient(base_url=slack.base_url)` at it; use `slack.response_url()` as the
`response_url` of signed slash commands and interactions.

It serves the history it keeps (`conversations.history`, `conversations.replies`), and
`hold(method)` carries out the next call of a method but holds its answer until released.

It holds the bot to its scopes (`scopes=`, by default the manifests' `bot.slack.scopes`): a call
they do not allow is refused with `missing_scope`. Like Slack, it rate-limits chat.postMessage
per channel (`rate_limit`, see `slack_access`; on a clock `TEST_SPEED` times faster than Slack's
unless told otherwise, so the tests keep their pace; `None` turns it off) and shares uploaded
files some time after `files.completeUploadExternal` answered, in any order (`async_file_shares`,
see `slack_files`).

It also speaks Socket Mode: `apps.connections.open` (with an `xapp-` app-level token) hands out a
`ws://` URL on the same port; the WebSocket greets with `hello`, and `send_slash_command()`
delivers a `slash_commands` envelope and returns the payload of the app's acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler, Middleware

from bot.slack.scopes import BOT_SCOPES, METHOD_SCOPES
from bot.testing.loopback import LoopbackServer
from bot.testing.slack_access import LIKE_SLACK, PostRateLimits, check_scopes
from bot.testing.slack_access import TEST_SPEED as TEST_SPEED
from bot.testing.slack_access import RateLimit as RateLimit
from bot.testing.slack_files import FileUploads
from bot.testing.slack_history import ConversationHistory
from bot.testing.slack_home import HomeAndMemberships
from bot.testing.slack_limits import BLOCK_TYPES as BLOCK_TYPES
from bot.testing.slack_limits import MAX_BLOCKS as MAX_BLOCKS
from bot.testing.slack_limits import MAX_BLOCKS_TEXT_CHARS as MAX_BLOCKS_TEXT_CHARS
from bot.testing.slack_limits import MAX_TEXT_CHARS as MAX_TEXT_CHARS
from bot.testing.slack_methods import WebApiMethods
from bot.testing.slack_records import APP_ID as APP_ID
from bot.testing.slack_records import BOT_ID as BOT_ID
from bot.testing.slack_records import BOT_USER_ID as BOT_USER_ID
from bot.testing.slack_records import BOT_USER_NAME as BOT_USER_NAME
from bot.testing.slack_records import DEFAULT_TZ as DEFAULT_TZ
from bot.testing.slack_records import SOCKET_MODE_PATH, Fault, PendingUpload, Refusal
from bot.testing.slack_records import TEAM_DOMAIN as TEAM_DOMAIN
from bot.testing.slack_records import TEAM_ID as TEAM_ID
from bot.testing.slack_records import Ephemeral as Ephemeral
from bot.testing.slack_records import HeldCall as HeldCall
from bot.testing.slack_records import PostedMessage as PostedMessage
from bot.testing.slack_records import SlackCall as SlackCall
from bot.testing.slack_records import UploadedFile as UploadedFile
from bot.testing.slack_requests import request_params, text_param
from bot.testing.slack_socket_mode import SocketMode


class SlackStandIn(SocketMode, WebApiMethods, FileUploads, ConversationHistory, HomeAndMemberships):
    """Slack Web API, `response_url` and file-upload endpoints on one local port.

    `scopes` are the bot token's granted scopes; `rate_limit` is chat.postMessage's limit per
    channel; `async_file_shares` shares files after a delay drawn from `random.Random(seed)`;
    `memberships` maps each user to the channels they are in (by default, all of them).
    """

    def __init__(
        self,
        *,
        member_of: Iterable[str] = ("C_GENERAL",),
        public: Iterable[str] = ("C_GENERAL", "C_OTHER"),
        private: Iterable[str] = ("G_PRIVATE",),
        archived: Iterable[str] = (),
        users: Mapping[str, str] | None = None,
        scopes: Iterable[str] = BOT_SCOPES,
        rate_limit: RateLimit | None = LIKE_SLACK,
        async_file_shares: bool = True,
        seed: int = 0,
        memberships: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.scopes: tuple[str, ...] = tuple(scopes)
        self.rate_limits = PostRateLimits(rate_limit) if rate_limit is not None else None
        self.speed = rate_limit.speed if rate_limit is not None else TEST_SPEED
        """How much faster than Slack's the stand-in's clock runs (a bot facing it paces
        that much faster: `build_bot(slack_speed=…)`)."""
        self.async_file_shares = async_file_shares
        self._share_delays = random.Random(seed)
        self._pending_shares: set[asyncio.TimerHandle] = set()
        self.members: set[str] = set(member_of)
        self.public_channels: set[str] = set(public)
        self.private_channels: set[str] = set(private)
        self.archived_channels: set[str] = set(archived)
        self.users: dict[str, str] = dict(users or {})
        self.bots: set[str] = set()
        """Users that `users.info` says are bots (the bot itself always is)."""
        self.app_users: set[str] = set()
        """People who authorized the app (`is_app_user`: who installed it, say)."""
        self.memberships = (
            {user: set(channels) for user, channels in memberships.items()}
            if memberships is not None
            else None
        )
        self.home_views: dict[str, dict[str, Any]] = {}
        self.latency_s: float = 0.0
        self.calls: list[SlackCall] = []
        self.messages: list[PostedMessage] = []
        self.ephemerals: list[Ephemeral] = []
        self.files: list[UploadedFile] = []
        self._faults: dict[str, list[Fault]] = {}
        self._holds: list[HeldCall] = []
        self._uploads: dict[str, PendingUpload] = {}
        self._ts_count = 0
        self._last_ts_us = 0
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
        for held in self._holds:
            held.release()
        self._cancel_pending_shares()
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
        fault = Fault(error, status, retry_after, times, after)
        self._faults.setdefault(method, []).append(fault)

    def lose_answer(
        self, method: str, *, late_s: float | None = None, times: int = 1, after: int = 0
    ) -> None:
        """Carry out the next `times` calls of `method` in full (a post is kept), then lose the
        answer as a network does: reset the connection, or with `late_s` answer that many
        seconds late (past a client's timeout). `after` as in `fail_next`."""
        fault = Fault(None, 200, None, times, after, lost_answer=True, late_s=late_s)
        self._faults.setdefault(method, []).append(fault)

    def hold(self, method: str) -> HeldCall:
        """Hold the answer of the next call of `method` (after earlier holds on it) until released.

        The call is carried out in full first, as Slack does (the message is stored, a refusal
        recorded); `await held.arrived()` returns it, `held.release()` lets its answer go. A
        held call is not in flight for `wait_idle()`; holds left open are released on exit.
        """
        held = HeldCall(method, self.summary)
        self._holds.append(held)
        return held

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
        """Return once no request has been received or in progress, and no file share has
        landed or been pending (`async_file_shares`), for `quiet_s` seconds.

        A call whose answer is held (`hold`) is not in progress: it has been carried out.
        """
        deadline = time.monotonic() + timeout
        while (
            self._in_flight
            or self._pending_shares
            or time.monotonic() - self._last_activity < quiet_s
        ):
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"Slack traffic did not stop within {timeout} s\n{self.summary()}"
                )
            await asyncio.sleep(0.01)

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

    def _take_fault(self, method: str, *, lost_answer: bool = False) -> Fault | None:
        """The next fault of `method` of the kind asked for: one that answers with a failure,
        or (`lost_answer`) one that carries the call out and loses its answer."""
        queue = self._faults.get(method)
        if not queue or queue[0].lost_answer is not lost_answer:
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
        if request.transport is not None:
            call.connection = request.transport.get_extra_info("peername")
        self.calls.append(call)
        headers: dict[str, str] = {}
        lost: Fault | None = None
        try:
            call.params = await request_params(request)
            lost = self._take_fault(method, lost_answer=True)
            status, body = self._answer(method, call.params, request.headers, headers)
        except Refusal as refusal:
            status, body = 200, refusal.body()
        call.status, call.response = status, body
        if lost is not None and lost.late_s is None:
            call.status = 0  # the answer never left
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError(f"the stand-in reset the connection of {method}")
        if lost is not None and lost.late_s is not None:
            await asyncio.sleep(lost.late_s)
        held = next(
            (h for h in self._holds if h.method == method and h.call is None and not h.released),
            None,
        )
        if held is not None:
            held.hold(call)
            self._in_flight -= 1  # carried out: only its answer waits
            try:
                await held.until_released()
            finally:
                self._in_flight += 1
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
            raise Refusal("not_authed")
        if method == "apps.connections.open":
            # Only an app-level token may open a Socket Mode connection.
            if authorization.startswith("Bearer xox"):
                raise Refusal("not_allowed_token_type")
            if not authorization.startswith("Bearer xapp-"):
                raise Refusal("invalid_auth")
        elif not authorization.startswith("Bearer xox"):
            raise Refusal("invalid_auth")
        else:
            # Slack tells a bot token's scopes, and those the method accepts, on every answer.
            response_headers["x-oauth-scopes"] = ",".join(self.scopes)
            response_headers["x-accepted-oauth-scopes"] = ",".join(METHOD_SCOPES.get(method, ()))
        fault = self._take_fault(method)
        if fault is None:
            handler = self._methods().get(method)
            if handler is None:
                raise Refusal("unknown_method")
            channel = text_param(params, "channel")
            kind = (channel in self.private_channels) if channel and self._known(channel) else None
            check_scopes(method, self.scopes, private=kind)
            fault = self._rate_limited(method, channel)
            if fault is None:
                return 200, {"ok": True, **handler(params)}
        if fault.retry_after is not None:
            response_headers["Retry-After"] = str(fault.retry_after)
        default_error = "ratelimited" if fault.status == 429 else "fatal_error"
        return fault.status, {"ok": False, "error": fault.error or default_error}

    def _rate_limited(self, method: str, channel: str | None) -> Fault | None:
        """The 429 Slack answers when the call is over its rate limit (`rate_limit`), else None."""
        if method != "chat.postMessage" or self.rate_limits is None:
            return None
        retry_after = self.rate_limits.take(channel or "")
        return None if retry_after is None else Fault("ratelimited", 429, retry_after, 1)

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "conversations.join": self._conversations_join,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "users.conversations": self._users_conversations,
            "views.publish": self._views_publish,
            "chat.getPermalink": self._chat_get_permalink,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "apps.connections.open": self._apps_connections_open,
        }


def _shorten(text: str, limit: int = 60) -> str:
    one_line = text.replace("\n", "⏎")
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"
