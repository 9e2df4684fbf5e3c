"""Async client for the Algorithmia v1 calls the bot needs: an algorithm's error log and its id.

It maps HTTP to typed results (`RecordBatch`, `AlgorithmInfo`) and to the exception tree of
`bot.algorithmia.exceptions`; it retries idempotent GETs on connect errors, timeouts, a connection
dropped mid-request (a keep-alive connection the server closed while idle) and 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, assert_never

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.algorithmia.exceptions import (
    AlgorithmiaError,
    BadResponse,
    FeatureDisabled,
    Forbidden,
    NotFound,
    RequestRejected,
    Unauthorized,
    Unavailable,
)
from bot.domain.algorithm_ref import AlgorithmId, AlgorithmRef, OwnerName
from bot.errors.records import (
    DEEPEST_JSON,
    RecordBatch,
    loads_deep,
    read_lazily,
    validate_records,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

EXCERPT_LIMIT = 200
"""The most characters of server text (a message, an HTML page) an exception carries."""

FEATURE_DISABLED_CODE = 5005
ERROR_FOR_CODE: dict[int, type[AlgorithmiaError]] = {
    1000: NotFound,  # AlgorithmNotFound
    1001: NotFound,  # AlgorithmNameDoesNotExist
    1009: NotFound,  # AlgorithmIdDoesNotExist
    2001: Forbidden,  # NotAuthorized
    2002: Unauthorized,  # NotAuthenticated
    3000: NotFound,  # UserNotFound
    3100: NotFound,  # OrganizationNotFound
}
"""Classes for the spec's codes, used only when the status alone does not decide."""

OUTCOMES: dict[type[AlgorithmiaError], str] = {
    NotFound: "not_found",
    Unauthorized: "denied",
    Forbidden: "denied",
    FeatureDisabled: "denied",
    Unavailable: "unavailable",
    BadResponse: "bad_response",
    RequestRejected: "bad_response",
}
"""How a request ended, as `algo_errors_cluster_requests_total{outcome}` counts it."""

# "This feature doesn't exist yet." (the API docs' 5005 example), "… feature is disabled", …
# The look-behind keeps an algorithm called `feature` ("algo://a/feature does not exist") out.
_FEATURE_OFF = re.compile(
    r"(?<![\w/])feature\s+(?:is\s+|has\s+been\s+)?(?:currently\s+)?"
    r"(?:disabled|not\s+enabled|switched\s+off|turned\s+off|does\s*n[o'’]t\s+exist)",
    re.IGNORECASE,
)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")
_REDACTED = "[redacted]"
_MIN_SECRET_LENGTH = 8  # shorter "credentials" are test stand-ins; replacing them would garble text

_RETRIED_TRANSPORT_ERRORS = (
    httpx.ConnectError,
    httpx.TimeoutException,
    # A pooled keep-alive connection the server (or a proxy) closed while idle fails on reuse
    # with one of these; a GET is idempotent, so trying again on a fresh connection is safe.
    httpx.RemoteProtocolError,
    httpx.ReadError,
)


def default_timeout() -> httpx.Timeout:
    """Timeouts for the process's `httpx.AsyncClient`: an errors call may take a while to read."""
    return httpx.Timeout(connect=5.0, read=20.0, write=10.0, pool=5.0)


class AlgorithmInfo(BaseModel):
    """The part of `GET /v1/algorithms/{owner}/{name}` the bot uses."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str | None = None
    """The algorithm's immutable UUID (absent from the spec, present in real responses)."""
    name: str | None = None


@dataclass(frozen=True, slots=True)
class _ServerError:
    """What an error body said, whatever its shape."""

    message: str | None
    code: int | None


class AlgorithmiaClient:
    """Calls one cluster with one credential over a shared `httpx.AsyncClient`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        authorization: str,
        *,
        attempts: int = 3,
        backoff_s: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observe: Callable[[str, float], None] | None = None,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        """`observe(outcome, seconds)` is told how each request ended (`OUTCOMES`), its
        retries included, and how long it took. `gate` bounds the requests in flight at once
        (each try holds it): beyond the pool's connections they would only queue in it."""
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if backoff_s < 0:
            raise ValueError("backoff_s must not be negative")
        self._http = http
        self._base_url = _api_root(base_url)
        self._headers = {"Authorization": authorization, "Accept": "application/json"}
        scheme, _, credential = authorization.strip().partition(" ")
        self._secret = credential.strip() or scheme
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._observe = observe
        self._gate = gate if gate is not None else contextlib.nullcontext()

    async def list_errors(self, ref: AlgorithmRef) -> RecordBatch:
        """The algorithm's errors of the past 7 days (at most 200); malformed ones are counted."""
        return await self._observed(self._list_errors(ref))

    async def get_algorithm(self, ref: OwnerName) -> AlgorithmInfo:
        """The algorithm's details, chiefly its UUID."""
        return await self._observed(self._get_algorithm(ref))

    async def _observed(self, request: Awaitable[T]) -> T:
        """`request`, told to `observe` with how it ended (a 2xx of the wrong shape is a
        `bad_response`) and how long it took, its retries included."""
        started = time.perf_counter()
        try:
            found = await request
        except AlgorithmiaError as error:
            self._told(OUTCOMES.get(type(error), "bad_response"), started)
            raise
        self._told("ok", started)
        return found

    async def _list_errors(self, ref: AlgorithmRef) -> RecordBatch:
        match ref:
            case OwnerName(owner=owner, name=name):
                path = f"/v1/algorithms/{owner}/{name}/errors"
            case AlgorithmId(uuid=uuid):
                path = f"/v1/algorithms/{uuid}/errors"
            case _:
                assert_never(ref)
        status, body = await self._get_json(path, read_lazily)
        if isinstance(body, RecordBatch):  # well formed: its records decoded when asked for
            return body
        if not isinstance(body, list):
            raise BadResponse(
                f"expected a JSON array of error records, got {_json_kind(body)}", status=status
            )
        return validate_records(body)

    async def _get_algorithm(self, ref: OwnerName) -> AlgorithmInfo:
        if not isinstance(ref, OwnerName):
            raise TypeError(f"get_algorithm takes an OwnerName, not {type(ref).__name__}")
        path = f"/v1/algorithms/{ref.owner}/{ref.name}"
        status, body = await self._get_json(path)
        if isinstance(body, list) and ref.name == "errors":
            # The cluster may route `/v1/algorithms/owner/errors` to the errors-by-id route.
            raise BadResponse(
                f"the cluster answered GET {path} with a list of error records: the name `errors`"
                " is ambiguous on this route; name the algorithm as `id:UUID` instead",
                status=status,
            )
        if not isinstance(body, dict):
            raise BadResponse(
                f"expected an algorithm object, got {_json_kind(body)}", status=status
            )
        try:
            return AlgorithmInfo.model_validate(body)
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, error["loc"])) for error in exc.errors())
            message = f"unexpected algorithm object: invalid {fields}"
            raise BadResponse(message, status=status) from None

    def _told(self, outcome: str, started: float) -> None:
        if self._observe is not None:
            self._observe(outcome, time.perf_counter() - started)

    async def _get_json(
        self, path: str, read: Callable[[bytes], object | None] | None = None
    ) -> tuple[int, Any]:
        """GET `path` and decode a 2xx JSON body; raise the mapped error for anything else.

        `read`: a one-pass reading of the body tried first; what it gives (not None) is the
        body, else the body is decoded with `json.loads` and told apart as before."""
        response = await self._get(path)
        if not response.is_success:
            raise self._error_from_response(response)
        if read is not None and (found := read(response.content)) is not None:
            return response.status_code, found
        try:
            body = loads_deep(response.content)
        except RecursionError:
            message = (
                f"the answer's JSON nests deeper than it can be read ({DEEPEST_JSON:,} levels)"
            )
            raise BadResponse(message, status=response.status_code) from None
        except ValueError:
            content_type = response.headers.get("Content-Type", "").partition(";")[0].strip()
            got = (
                f"{content_type or 'text'}: {self._excerpt(response)}"
                if response.content.strip()
                else "an empty body"
            )
            raise BadResponse(f"expected JSON, got {got}", status=response.status_code) from None
        if isinstance(body, dict) and "error" in body:
            raise self._server_error(
                response.status_code, _read_error_body(body), response.reason_phrase
            )
        return response.status_code, body

    async def _get(self, path: str) -> httpx.Response:
        """GET `path`, retrying connect errors, timeouts, dropped connections and 5xx; never
        returns a 5xx."""
        url = _url(self._base_url + path)
        attempt = 0
        while True:
            attempt += 1
            cause: Exception | None = None
            status: int | None = None
            try:
                async with self._gate:
                    response = await self._http.get(url, headers=self._headers)
            except _RETRIED_TRANSPORT_ERRORS as exc:
                failure, cause = self._describe_transport_failure(exc, url), exc
            except httpx.DecodingError as exc:  # a body its Content-Encoding does not fit
                failure = f"the answer to {url} could not be decoded"
                raise BadResponse(f"{failure}: {self._one_line(str(exc))}") from exc
            except httpx.RequestError as exc:
                # Anything else (a proxy error, an unsupported protocol, a redirect loop, …) will
                # not heal by itself.
                raise Unavailable(self._describe_transport_failure(exc, url)) from exc
            else:
                if not response.is_server_error:
                    return response
                error = self._error_from_response(response)
                if not isinstance(error, Unavailable):
                    raise error
                failure, status = error.message, response.status_code
            if attempt == self._attempts:
                tries = f" (tried {attempt} times)" if attempt > 1 else ""
                raise Unavailable(failure + tries, status=status) from cause
            delay = self._backoff_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
            logger.warning(
                "GET %s failed (%s); retry %d of %d in %.2f s",
                path,
                failure,
                attempt,
                self._attempts - 1,
                delay,
            )
            await self._sleep(delay)

    def _error_from_response(self, response: httpx.Response) -> AlgorithmiaError:
        """The exception for a non-2xx response, carrying the server's message when it sent one."""
        try:
            server = _read_error_body(json.loads(response.content))
        except (ValueError, RecursionError):
            server = _ServerError(self._excerpt(response, fallback=False) or None, None)
        return self._server_error(response.status_code, server, response.reason_phrase)

    def _server_error(self, status: int, server: _ServerError, reason: str) -> AlgorithmiaError:
        """Map by status first, then by code; a switched-off feature wins over both."""
        message = self._one_line(server.message) if server.message else ""
        cls: type[AlgorithmiaError]
        if server.code == FEATURE_DISABLED_CODE or _FEATURE_OFF.search(message):
            # The docs do not say which status a switched-off feature answers with.
            cls = FeatureDisabled
        elif status == 401:
            cls = Unauthorized
        elif status == 403:
            cls = Forbidden
        elif status == 404:
            cls = NotFound
        elif status >= 500:
            cls = Unavailable
        elif server.code in ERROR_FOR_CODE:
            cls = ERROR_FOR_CODE[server.code]
        elif 400 <= status < 500:
            cls = RequestRejected
        else:
            cls = BadResponse
        if cls is Unavailable:
            message = f"cluster answered {status}" + (f": {message}" if message else f" {reason}")
        elif not message:
            message = f"cluster answered {status} {reason}"
        return cls(message.strip(), status=status, code=server.code)

    def _describe_transport_failure(self, exc: httpx.RequestError, url: httpx.URL) -> str:
        timeout = self._http.timeout
        detail = self._one_line(str(exc))
        match exc:
            case httpx.ConnectTimeout():
                return f"timed out{_after(timeout.connect)} connecting to {self._base_url}"
            case httpx.ReadTimeout():
                return f"timed out{_after(timeout.read)} waiting for {url}"
            case httpx.WriteTimeout():
                return f"timed out{_after(timeout.write)} sending to {url}"
            case httpx.PoolTimeout():
                return (
                    f"timed out{_after(timeout.pool)} waiting for a free connection"
                    f" to {self._base_url}"
                )
            case httpx.TimeoutException():
                return f"timed out waiting for {url}"
            case httpx.ConnectError():
                return f"could not connect to {self._base_url}" + (f": {detail}" if detail else "")
            case httpx.RemoteProtocolError() | httpx.ReadError():
                return f"connection lost waiting for {url}" + (f": {detail}" if detail else "")
            case _:
                return f"request to {url} failed: {detail or type(exc).__name__}"

    def _excerpt(self, response: httpx.Response, *, fallback: bool = True) -> str:
        """A short single line of a non-JSON body: an HTML page's title, or its text."""
        text = response.text
        is_html = "html" in response.headers.get("Content-Type", "") or text.lstrip().startswith(
            "<"
        )
        if is_html:
            title = _HTML_TITLE.search(text)
            text = title.group(1) if title else _HTML_TAG.sub(" ", text)
            text = html.unescape(text)
        excerpt = self._one_line(text)
        if excerpt or not fallback:
            return excerpt
        return response.reason_phrase or f"HTTP {response.status_code}"

    def _one_line(self, text: str) -> str:
        """Server text made safe to show: one line, no credential, at most `EXCERPT_LIMIT` chars."""
        line = " ".join(text.split())
        if len(self._secret) >= _MIN_SECRET_LENGTH:
            line = line.replace(self._secret, _REDACTED)
        if len(line) > EXCERPT_LIMIT:
            line = line[: EXCERPT_LIMIT - 1].rstrip() + "…"
        return line


def _api_root(base_url: str) -> str:
    """`https://host`, `https://host/`, `https://host/v1` and `https://host/v1/` → `https://host`."""
    root = base_url.strip().rstrip("/")
    root = root.removesuffix("/v1").rstrip("/")
    url = httpx.URL(root)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"{base_url!r} is not an http(s) URL such as https://api.algorithmia.com")
    if url.userinfo or url.query or url.fragment:
        raise ValueError("the base URL takes no credentials, query or fragment")
    return root


@functools.lru_cache(maxsize=16384)
def _url(text: str) -> httpx.URL:
    """A route's URL parsed once, not at every request (parsing one costs httpx about 40 µs,
    as much again as the rest of building a request): a digest run asks for the same
    routes run after run."""
    return httpx.URL(text)


def _read_error_body(body: Any) -> _ServerError:
    """Any shape seen: `{"error": {…}}`, `{"error": "text"}`, the unwrapped `{code, message}`."""
    if isinstance(body, str):
        return _ServerError(body or None, None)
    if not isinstance(body, dict):
        return _ServerError(None, None)
    error = body.get("error", body)
    if isinstance(error, str):
        return _ServerError(error or None, None)
    if isinstance(error, dict):
        message = error.get("message")
        return _ServerError(
            message if isinstance(message, str) and message else None, _code(error.get("code"))
        )
    return _ServerError(None, None)


def _code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value)
    return None


def _json_kind(body: object) -> str:
    if isinstance(body, dict):
        return "an object"
    if isinstance(body, list):
        return "an array"
    if isinstance(body, str):
        return "a string"
    if isinstance(body, bool):
        return "a boolean"
    if isinstance(body, int | float):
        return "a number"
    return "null"


def _after(seconds: float | None) -> str:
    return f" after {seconds:g} s" if seconds is not None else ""
