"""The Slack stand-in's Socket Mode: `apps.connections.open`, the WebSocket that greets with
`hello`, and slash commands delivered over it, as a mixin of `SlackStandIn`.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from bot.testing.signing import event_callback
from bot.testing.slack_records import APP_ID, SOCKET_MODE_PATH, TEAM_DOMAIN, TEAM_ID


class SocketMode:
    """The Socket Mode side of `SlackStandIn`, over the state it owns."""

    # Socket Mode state, owned and initialised by `SlackStandIn`.
    socket_acks: list[dict[str, Any]]
    _tickets: set[str]
    _ticket_count: int
    _sockets: list[web.WebSocketResponse]
    _pending_acks: dict[str, asyncio.Future[dict[str, Any]]]
    _envelope_count: int
    _last_activity: float

    # Provided by `SlackStandIn`.
    if TYPE_CHECKING:

        @property
        def root_url(self) -> str: ...

        def response_url(self, name: str = "cmd") -> str: ...

        def summary(self) -> str: ...

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
        self._envelope_count += 1
        payload = {
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
        }
        return await self._deliver("slash_commands", payload, f"{command} {text!r}", timeout)

    async def send_event(
        self,
        event: dict[str, Any],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Deliver an Events API event (`app_home_opened`, …) over Socket Mode, as Slack does,
        and wait for the app to acknowledge the envelope (Slack redelivers one it does not)."""
        self._envelope_count += 1
        payload = event_callback(event, event_id=f"Ev{self._envelope_count:08d}")
        return await self._deliver("events_api", payload, f"event {event.get('type')}", timeout)

    async def _deliver(
        self,
        kind: str,
        payload: dict[str, Any],
        what: str,
        timeout: float,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Send one envelope on the newest socket and wait for its acknowledgement; returns the
        acknowledgement's `payload` (`{}` for an empty ack)."""
        deadline = time.monotonic() + timeout
        await self.socket_connected(timeout)
        ws = self._sockets[-1]
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "accepts_response_payload": kind == "slash_commands",
            "payload": payload,
            "retry_attempt": 0,
            "retry_reason": "",
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
                    f"no acknowledgement of {what} within {timeout} s "
                    f"(Slack would show a timeout error)\n{self.summary()}"
                ) from None
        finally:
            self._pending_acks.pop(envelope_id, None)
        answer = message.get("payload")
        return dict(answer) if isinstance(answer, dict) else {}

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        self._ticket_count += 1
        ticket = str(self._ticket_count)
        self._tickets.add(ticket)
        ws_root = self.root_url.replace("http://", "ws://", 1)
        return {"url": f"{ws_root}{SOCKET_MODE_PATH}?ticket={ticket}"}

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


def _channel_name(channel: str) -> str:
    """The name the stand-in gives a channel id (`C_GENERAL` → `general`)."""
    return channel.lower().removeprefix("c_").removeprefix("g_")
