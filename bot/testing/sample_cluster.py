"""An Algorithmia cluster stand-in: a real HTTP server on 127.0.0.1 serving error logs.

It owns a registry of algorithms and their error records, and answers the v1 routes the bot
uses (get algorithm, errors by owner/name, errors by UUID) with the API's status codes, error
bodies, 7-day window and 200-record cap. It also ships the sample records of `acme/image_tagger`
(`sample_errors.json`) for the demo, the end-to-end tests and the benchmarks.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from importlib import resources
from types import TracebackType
from typing import Any, Self
from uuid import uuid4

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.testing.loopback import LoopbackServer

DEFAULT_AUTHORIZATION = "Simple simTESTKEY0000000000000000000"
SAMPLE_OWNER = "acme"
SAMPLE_NAME = "image_tagger"
SAMPLE_ALGORITHM_ID = "3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8"
SEMANTIC_VERSION = "2.0.1"
WINDOW_MS = 7 * 24 * 60 * 60 * 1000
MAX_RECORDS = 200

# The API's own UUID pattern (8-4-4-4-12 letters and digits); kept apart from the bot's copy so
# the stand-in checks the bot rather than sharing its mistakes.
_UUID = re.compile(r"[a-zA-Z0-9]{8}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{4}-[a-zA-Z0-9]{12}")
_FORBIDDEN_ERROR_ID = "1cfb98c5-4d7e-4a0b-9f2e-6c3a1d8e5b70"
_DOWN_BODY = "<html><body>503 Service Unavailable</body></html>"


@dataclass
class _Algorithm:
    owner: str
    name: str
    uuid: str
    records: list[dict[str, Any]] = field(default_factory=list)
    forbidden: bool = False
    encoded: tuple[tuple[int, ...], bytes] | None = None
    """The last body sent and the records it held (`SampleCluster.reuse_bodies`)."""


@dataclass
class _Fault:
    status: int
    times: int


class SampleCluster:
    """The v1 algorithm and error-log routes of one Algorithmia cluster, on one local port."""

    def __init__(
        self,
        *,
        authorization: str = DEFAULT_AUTHORIZATION,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.authorization = authorization
        self.down = False
        self.errors_feature_enabled = True
        self.latency_s = 0.0
        self.reuse_bodies = False
        """Encode a response's body once while its records stay the same (benchmarks: 5,000
        algorithms answering at once must not wait on this process encoding 128 KB each, as
        they would not on a real cluster). Records must then not be changed in place."""
        self.requests: list[tuple[str, str]] = []
        self.last_authorization: str | None = None
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self._by_name: dict[tuple[str, str], _Algorithm] = {}
        self._by_uuid: dict[str, _Algorithm] = {}
        self._faults: list[_Fault] = []
        self._server = LoopbackServer("SampleCluster")

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._gateway()])
        app.router.add_get("/v1/algorithms/{owner}/{name}/errors", self._errors_by_name)
        # `/v1/algorithms/X/errors` also matches this route; `_algorithm_or_errors_by_id`
        # resolves it like the API: a UUID-shaped X means errors by id, anything else is the
        # algorithm named `errors`.
        app.router.add_get("/v1/algorithms/{first}/{second}", self._algorithm_or_errors_by_id)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        await self._server.start(app)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._server.stop()

    @property
    def base_url(self) -> str:
        """The API base, as `ALGORITHMIA_API_URL` (no trailing slash)."""
        return self._server.url

    # -- registry ----------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The cluster's clock (epoch ms): the 7-day window is measured from it."""
        return self._clock_ms()

    def add_algorithm(
        self,
        owner: str,
        name: str,
        *,
        uuid: str | None = None,
        records: list[dict[str, Any]] | None = None,
        forbidden: bool = False,
    ) -> str:
        """Register (or replace) an algorithm; returns its UUID."""
        algorithm = _Algorithm(owner, name, uuid or str(uuid4()), forbidden=forbidden)
        previous = self._by_name.pop((owner, name), None)
        if previous is not None:
            self._by_uuid.pop(previous.uuid, None)
        self._by_name[(owner, name)] = algorithm
        self._by_uuid[algorithm.uuid] = algorithm
        self.set_records(owner, name, records or [])
        return algorithm.uuid

    def set_records(self, owner: str, name: str, records: list[dict[str, Any]]) -> None:
        algorithm = self._by_name[(owner, name)]
        algorithm.records, algorithm.encoded = _newest_first(records), None

    def append_records(self, owner: str, name: str, records: list[dict[str, Any]]) -> None:
        """Add newly failed executions; the log stays ordered newest first."""
        algorithm = self._by_name[(owner, name)]
        algorithm.records = _newest_first([*records, *algorithm.records])
        algorithm.encoded = None

    def load_sample(self, *, now_ms: int | None = None) -> str:
        """Register `acme/image_tagger` with the sample records, aged relative to `now_ms`."""
        now = self.now_ms() if now_ms is None else now_ms
        algorithm = _sample()["algorithm"]
        return self.add_algorithm(
            algorithm["owner"], algorithm["name"], uuid=algorithm["id"], records=sample_records(now)
        )

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` requests with `status` before any other check."""
        self._faults.append(_Fault(status, times))

    # -- HTTP --------------------------------------------------------------------------------

    def _gateway(self) -> Middleware:
        """What happens before routing: recording, latency, outages, injected faults, auth."""

        @web.middleware
        async def gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.requests.append((request.method, request.path))
            self.last_authorization = request.headers.get("Authorization")
            if self.latency_s > 0:
                await asyncio.sleep(self.latency_s)
            if self.down:
                return web.Response(status=503, text=_DOWN_BODY, content_type="text/html")
            if self._faults:
                fault = self._faults[0]
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.pop(0)
                return _error(fault.status, {"message": _reason(fault.status)})
            if self.last_authorization is None:
                return _error(401, {"message": "authorization required"})
            if self.last_authorization != self.authorization:
                return _error(401, {"code": 2002, "message": "Authentication failed"})
            return await handler(request)

        return gateway

    async def _errors_by_name(self, request: web.Request) -> web.Response:
        owner, name = request.match_info["owner"], request.match_info["name"]
        if not self.errors_feature_enabled:
            return _error(404, {"message": "not found"})
        algorithm = self._by_name.get((owner, name))
        if algorithm is None:
            return _error(404, {"message": f"algorithm algo://{owner}/{name} not found"})
        return self._errors(algorithm)

    async def _algorithm_or_errors_by_id(self, request: web.Request) -> web.Response:
        first, second = request.match_info["first"], request.match_info["second"]
        if second == "errors" and _UUID.fullmatch(first):
            if not self.errors_feature_enabled:
                return _error(404, {"message": "not found"})
            algorithm = self._by_uuid.get(first)
            if algorithm is None:
                return _error(404, {"message": "not found"})
            return self._errors(algorithm)
        algorithm = self._by_name.get((first, second))
        if algorithm is None:
            return web.json_response({"error": "No such algorithm"}, status=404)
        if algorithm.forbidden:
            return _forbidden()
        return web.json_response(
            {
                "id": algorithm.uuid,
                "name": algorithm.name,
                "details": {"label": algorithm.name},
                "version_info": {"semantic_version": SEMANTIC_VERSION},
                "build": {"status": "succeeded"},
                "resource_type": "algorithm",
            }
        )

    async def _not_found(self, request: web.Request) -> web.Response:
        return _error(404, {"message": "not found"})

    def encode_bodies(self) -> None:
        """Encode every algorithm's body now (with `reuse_bodies`), so that the first requests
        of a benchmark find the cluster as warm as the later ones."""
        for algorithm in self._by_name.values():
            self._errors(algorithm)

    def _errors(self, algorithm: _Algorithm) -> web.Response:
        if algorithm.forbidden:
            return _forbidden()
        oldest = self.now_ms() - WINDOW_MS
        recent = [r for r in algorithm.records if int(r.get("created_at", 0)) >= oldest]
        recent = recent[:MAX_RECORDS]
        if not self.reuse_bodies:
            return web.json_response(recent)
        held = tuple(map(id, recent))
        if algorithm.encoded is None or algorithm.encoded[0] != held:
            algorithm.encoded = held, json.dumps(recent).encode()
        return web.Response(body=algorithm.encoded[1], content_type="application/json")


def sample_records(now_ms: int) -> list[dict[str, Any]]:
    """The 80 sample records, newest first, with `created_at = now_ms - age_ms`."""
    records = []
    for record in _sample()["records"]:
        rebased = {key: value for key, value in record.items() if key != "age_ms"}
        rebased["created_at"] = now_ms - int(record["age_ms"])
        records.append(rebased)
    return records


def sample_bug_labels() -> dict[str, str]:
    """The true grouping of the sample: `request_id` → bug label."""
    return dict(_sample()["bugs"])


@cache
def _sample_text() -> str:
    return resources.files("bot.testing").joinpath("sample_errors.json").read_text("utf-8")


def _sample() -> dict[str, Any]:
    sample: dict[str, Any] = json.loads(_sample_text())
    return sample


def _newest_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A stable sort keeps the given order among records of the same millisecond.
    copied = copy.deepcopy(records)
    return sorted(copied, key=lambda r: int(r.get("created_at", 0)), reverse=True)


def _error(status: int, error: dict[str, Any]) -> web.Response:
    return web.json_response({"error": error}, status=status)


def _forbidden() -> web.Response:
    return _error(
        403,
        {
            "id": _FORBIDDEN_ERROR_ID,
            "code": 2001,
            "message": "Caller is not authorized to perform the operation",
        },
    )


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def fresh_record(bug: str, now_ms: int) -> dict[str, Any]:
    """A new occurrence of one of the sample's bugs: its newest record, a new id, at `now_ms`."""
    labels = sample_bug_labels()
    record = next(r for r in sample_records(now_ms) if labels[r["request_id"]] == bug)
    return record | {"request_id": f"req-{uuid.uuid4()}", "created_at": now_ms}
