"""The HTTP surface of `serve`: Slack's `/slack/events`, `/healthz`, `/readyz` and `/metrics` on
uvicorn."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Readiness:
    """What `/readyz` says: `blocking` parts stop Slack traffic (503, e.g. the socket);
    `degraded` parts do not (200: queries need no database, so a Service keeps routing)."""

    blocking: tuple[str, ...] = ()
    degraded: tuple[str, ...] = ()


async def _ready() -> Readiness:
    return Readiness()


def create_web_app(
    bolt: AsyncApp | None,
    *,
    metrics: Metrics,
    signing_secret: str = "",
    readiness: Callable[[], Awaitable[Readiness]] = _ready,
    gauges: Callable[[], Awaitable[None]] | None = None,
) -> Starlette:
    """`bolt` is None in Socket Mode: Slack traffic then arrives over the socket.

    `/healthz` answers 200 while the event loop runs, whatever the dependencies do; `/readyz`
    says what `readiness` finds; `/metrics` first asks `readiness` too (it sets the dependency
    gauges) and lets `gauges` read what they count.

    Every request to `/slack/events` is verified with `signing_secret` before anything reads
    its body (Bolt parses the body before it checks the signature): unsigned, stale or forged
    requests get 401 whatever they carry, and a signed body that is not a Slack payload 400."""
    routes = []
    if bolt is not None:
        verifier = SignatureVerifier(signing_secret)

        async def slack_events(request: Request) -> Response:
            body = await request.body()  # Starlette keeps it for Bolt to read again
            timestamp = request.headers.get("x-slack-request-timestamp", "")
            signature = request.headers.get("x-slack-signature", "")
            # The verifier raises on a timestamp that is not a number.
            signed = timestamp.isascii() and timestamp.isdigit()
            if not (signed and verifier.is_valid(body, timestamp, signature)):
                return JSONResponse({"error": "invalid signature"}, status_code=401)
            try:  # Bolt's request parses the body once
                text = body.decode("utf-8")
                bolt_request = AsyncBoltRequest(
                    body=text, query=str(request.query_params), headers=dict(request.headers)
                )
                if not bolt_request.body and text:
                    # Bolt reads any form body containing the word "payload" as an interaction
                    # and finds none (a command whose text says "payload" would get 404).
                    bolt_request.body = slack_payload(text, request.headers.get("content-type"))
                    bolt_request.context = build_async_context(
                        AsyncBoltContext({}), bolt_request.body
                    )
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                # Not UTF-8, not JSON, or parts of the wrong shape where Bolt reads them.
                return JSONResponse({"error": "not a Slack payload"}, status_code=400)
            if not isinstance(bolt_request.body, dict):
                return JSONResponse({"error": "not a Slack payload"}, status_code=400)
            misshapen = misshapen_part(bolt_request.body)
            if misshapen is not None:
                log.warning("a signed payload with a misshapen %s was refused", misshapen)
                return JSONResponse({"error": f"malformed payload: {misshapen}"}, status_code=400)
            try:
                response: Response = to_starlette_response(await bolt.async_dispatch(bolt_request))
            except (KeyError, IndexError, TypeError, AttributeError) as error:
                # Bolt reads a payload's parts before any listener runs (an interaction
                # without actions, a field of the wrong type): the request is at fault.
                # Its type only: an exception's message may quote parts of the payload.
                log.warning("a signed but malformed payload was refused (%s)", type(error).__name__)
                return JSONResponse({"error": "malformed payload"}, status_code=400)
            return response

        routes.append(Route("/slack/events", slack_events, methods=["POST"]))

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        found = await readiness()
        if found.blocking:
            reasons = [*found.blocking, *found.degraded]
            return JSONResponse({"status": "not ready", "reasons": reasons}, status_code=503)
        if found.degraded:
            return JSONResponse({"status": "degraded", "reasons": list(found.degraded)})
        return JSONResponse({"status": "ready"})

    async def metrics_endpoint(_: Request) -> Response:
        await readiness()  # `algo_errors_dependency_up` as of this scrape, not the last probe
        if gauges is not None:
            await gauges()
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes.append(Route("/healthz", healthz, methods=["GET"]))
    routes.append(Route("/readyz", readyz, methods=["GET"]))
    routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    return Starlette(routes=routes)


_TEXT_PARTS = ("type", "callback_id", "action_id", "block_id", "command", "trigger_id")
"""Parts of a payload Bolt reads as strings to pick a listener, before any listener runs."""


def misshapen_part(body: dict[str, Any]) -> str | None:
    """The name of a part Bolt reads to pick a listener that does not have the shape Slack
    gives it, or None. Bolt reads them before any listener runs and answers 500 when one is,
    say, an object where Slack sends a string; such a request is at fault (400)."""
    for key in _TEXT_PARTS:
        if key in body and not isinstance(body[key], str):
            return key
    actions = body.get("actions")
    if "actions" in body and not (
        isinstance(actions, list)
        and all(
            isinstance(a, dict)
            and isinstance(a.get("action_id"), str)
            and isinstance(a.get("block_id", ""), str)
            for a in actions
        )
    ):
        return "actions"
    for key, parts in (("view", ("type", "callback_id")), ("event", ("type", "subtype"))):
        if key not in body:
            continue
        value = body[key]
        if not isinstance(value, dict) or any(
            part in value and not isinstance(value[part], str) for part in parts
        ):
            return key
        if key == "event" and not isinstance(value.get("type"), str):
            return key
    return None


def slack_payload(text: str, content_type: str | None) -> Any:
    """What a request from Slack carries: a JSON body (events), the JSON of a form's `payload`
    field (interactions), or the form's fields (slash commands). Raises `ValueError` for JSON
    that does not parse."""
    if content_type == "application/json" or text.startswith("{"):
        return json.loads(text)
    fields = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in fields:
        return json.loads(fields["payload"])
    return fields


def _listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket created with `IPPROTO_TCP`: asyncio sets TCP_NODELAY on accepted
    connections only then (a plain `create_server` socket has proto 0 and every response
    waits ~40 ms for a delayed ACK)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(socket.SOMAXCONN)
    sock.setblocking(False)
    return sock


class _Uvicorn(uvicorn.Server):
    """uvicorn, telling `on_shutdown` the moment it stops accepting: on a signal, `stop()` or
    cancellation, before the requests in flight are waited for."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._on_shutdown is not None:
            self._on_shutdown()
        await super().shutdown(sockets)


class WebServer:
    """uvicorn in the current event loop, on a socket we bind (so port 0 works in tests).

    When it stops, requests in flight get `graceful_s` seconds to finish (None: as long as
    they take), and `on_shutdown` is called first, so the process stops taking other work
    at the same moment."""

    def __init__(
        self,
        app: Starlette,
        host: str = "0.0.0.0",
        port: int = 3000,
        *,
        graceful_s: float | None = None,
        on_shutdown: Callable[[], None] | None = None,
    ) -> None:
        self._socket = _listening_socket(host, port)
        config = uvicorn.Config(
            app, log_config=None, lifespan="off", access_log=False,
            timeout_graceful_shutdown=None if graceful_s is None else int(graceful_s),
        )  # fmt: skip
        self._server = _Uvicorn(config, on_shutdown)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    async def serve(self) -> None:
        """Serve until `stop()`, a signal, or cancellation (all shut down gracefully)."""
        try:
            await self._server.serve(sockets=[self._socket])
        except asyncio.CancelledError:
            if self._server.started:  # shut down as on a signal: listener and connections
                await self._server.shutdown(sockets=[self._socket])
            raise

    async def start(self) -> None:
        """Serve in the background; returns once the server accepts connections."""
        self._task = asyncio.create_task(self.serve())
        while not self._server.started:
            if self._task.done():
                await self._task
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._socket.close()
