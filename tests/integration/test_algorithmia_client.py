"""The Algorithmia client against a respx stand-in for the cluster: requests sent, errors raised."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from bot.algorithmia.client import AlgorithmiaClient, AlgorithmInfo, default_timeout
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
from bot.domain.algorithm_ref import (
    AlgorithmId,
    InvalidAlgorithmRef,
    OwnerName,
    parse_algorithm_ref,
)
from tests.conftest import load_sample

BASE = "https://api.cluster.test"
KEY = "simQ8vT3kLw2Zr9Xy4Bn6Mc1Pd7F"  # the CLI's format: 28 characters starting `sim`
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS1jbHVzdGVy"
# The `Authorization` values `Settings.authorization_header()` gives (tests/unit/test_config.py).
SIMPLE = f"Simple {KEY}"
BEARER = f"Bearer {JWT}"
UUID = "3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8"
ECHO = OwnerName("hello", "echo")
ERRORS_PATH = "/v1/algorithms/hello/echo/errors"

SAMPLE = load_sample()
RECORDS: list[dict[str, Any]] = SAMPLE["records"][:3]


class Sleeps:
    """Stands in for `asyncio.sleep`: records each pause instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=default_timeout()) as client:
        yield client


@pytest.fixture
def cluster() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        yield router


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(http: httpx.AsyncClient, sleeps: Sleeps) -> AlgorithmiaClient:
    return AlgorithmiaClient(http, BASE, SIMPLE, sleep=sleeps)


# Requests: routes, base URLs, credentials


async def test_list_errors_by_owner_and_name_sends_the_key(
    cluster: respx.MockRouter, client: AlgorithmiaClient
) -> None:
    route = cluster.get(ERRORS_PATH).respond(200, json=RECORDS)

    batch = await client.list_errors(ECHO)

    request = route.calls.last.request
    assert request.url.path == ERRORS_PATH
    assert request.headers["Authorization"] == f"Simple {KEY}"
    assert request.headers["Accept"] == "application/json"
    assert [r.request_id for r in batch.records] == [r["request_id"] for r in RECORDS]
    assert batch.skipped == 0


async def test_list_errors_by_id_uses_the_uuid_route_with_a_jwt(
    cluster: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    route = cluster.get(f"/v1/algorithms/{UUID}/errors").respond(200, json=RECORDS[:1])
    client = AlgorithmiaClient(http, BASE, BEARER)

    batch = await client.list_errors(AlgorithmId(UUID))

    assert route.calls.last.request.headers["Authorization"] == f"Bearer {JWT}"
    assert batch.records[0].request_id == RECORDS[0]["request_id"]


@pytest.mark.parametrize("base_url", [BASE, f"{BASE}/", f"{BASE}/v1", f"{BASE}/v1/"])
async def test_base_url_may_end_in_a_slash_or_v1(
    cluster: respx.MockRouter, http: httpx.AsyncClient, base_url: str
) -> None:
    route = cluster.get(ERRORS_PATH).respond(200, json=[])
    client = AlgorithmiaClient(http, base_url, SIMPLE)

    await client.list_errors(ECHO)

    assert route.calls.last.request.url == f"{BASE}{ERRORS_PATH}"


@pytest.mark.parametrize("base_url", ["api.cluster.test", "ftp://api.cluster.test", ""])
def test_a_base_url_that_is_not_http_is_refused(http: httpx.AsyncClient, base_url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        AlgorithmiaClient(http, base_url, SIMPLE)


async def test_an_algorithm_named_errors_keeps_the_owner_name_route(
    cluster: respx.MockRouter, client: AlgorithmiaClient
) -> None:
    route = cluster.get("/v1/algorithms/hello/errors/errors").respond(200, json=[])

    await client.list_errors(OwnerName("hello", "errors"))

    assert route.calls.last.request.url.path == "/v1/algorithms/hello/errors/errors"


@pytest.mark.parametrize(
    "text",
    [
        "1hello/echo",  # owner starts with a digit
        "hello/echo/errors",  # a path, not a name
        "../admin/echo",
        "id:not-a-uuid",
        "id:3b8f6c2e-9d41-4a7e-b5c0-71e2d9a4f6b8/../x",
    ],
)
async def test_an_invalid_reference_is_refused_before_any_request(
    cluster: respx.MockRouter, client: AlgorithmiaClient, text: str
) -> None:
    with pytest.raises(InvalidAlgorithmRef):
        await client.list_errors(parse_algorithm_ref(text))

    assert cluster.calls.call_count == 0


async def test_get_algorithm_returns_its_id_and_ignores_other_fields(
    cluster: respx.MockRouter, client: AlgorithmiaClient
) -> None:
    body = {
        "id": UUID,
        "name": "echo",
        "version_info": {"semantic_version": "0.1.0"},
        "build": {"status": "succeeded"},
    }
    route = cluster.get("/v1/algorithms/hello/echo").respond(200, json=body)

    info = await client.get_algorithm(ECHO)

    assert info == AlgorithmInfo(id=UUID, name="echo")
    assert route.calls.last.request.headers["Authorization"] == f"Simple {KEY}"


async def test_get_algorithm_named_errors_answered_with_records_says_to_use_the_id(
    cluster: respx.MockRouter, client: AlgorithmiaClient
) -> None:
    cluster.get("/v1/algorithms/hello/errors").respond(200, json=RECORDS)

    with pytest.raises(BadResponse) as caught:
        await client.get_algorithm(OwnerName("hello", "errors"))

    assert "`errors` is ambiguous" in caught.value.message
    assert "id:UUID" in caught.value.message


async def test_get_algorithm_with_a_wrong_id_type_is_a_bad_response(
    cluster: respx.MockRouter, client: AlgorithmiaClient
) -> None:
    cluster.get("/v1/algorithms/hello/echo").respond(200, json={"id": 42})

    with pytest.raises(BadResponse, match="invalid id"):
        await client.get_algorithm(ECHO)


# Records


async def test_a_malformed_record_is_skipped_and_counted(
    cluster: respx.MockRouter, client: AlgorithmiaClient
) -> None:
    malformed = {"request_id": "req-no-time", "error": "error:\nboom\nstacktrace:\nNone"}
    cluster.get(ERRORS_PATH).respond(200, json=[RECORDS[0], malformed, RECORDS[1], "junk"])

    batch = await client.list_errors(ECHO)

    assert [r.request_id for r in batch.records] == [
        RECORDS[0]["request_id"],
        RECORDS[1]["request_id"],
    ]
    assert batch.skipped == 2


async def test_unknown_record_fields_are_tolerated(
    cluster: respx.MockRouter, client: AlgorithmiaClient
) -> None:
    record = {**RECORDS[0], "age_ms": 1, "region": "eu-west-1", "tags": ["a"]}
    cluster.get(ERRORS_PATH).respond(200, json=[record])

    batch = await client.list_errors(ECHO)

    assert batch.skipped == 0
    assert batch.records[0].error == RECORDS[0]["error"]


# Error bodies

HTML_500 = (
    "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n"
    "<body><h1>Internal Server Error</h1><p>nginx</p></body></html>"
)
ERROR_CASES = [
    pytest.param(
        401,
        {"error": {"message": "authorization required"}},
        Unauthorized,
        "authorization required",
        id="401-object",
    ),
    pytest.param(
        403,
        {
            "error": {
                "id": "1cfb98c5-5c0a-4d5e-9f1c-6e1f2f0c9a11",
                "code": 2001,
                "message": "Caller is not authorized to perform the operation",
            }
        },
        Forbidden,
        "Caller is not authorized to perform the operation",
        id="403-code-2001",
    ),
    pytest.param(404, {"error": "No such algorithm"}, NotFound, "No such algorithm", id="404-str"),
    pytest.param(404, {"error": {"message": "not found"}}, NotFound, "not found", id="404-object"),
    pytest.param(
        404,
        {"error": {"message": "algorithm algo://hello/feature does not exist"}},
        NotFound,
        "algorithm algo://hello/feature does not exist",
        id="404-algorithm-called-feature",
    ),
    pytest.param(
        404,
        {
            "id": "dc7daff0-3a3b-4d3c-9a3e-0c6c1d2e3f40",
            "code": 5005,
            "message": "This feature doesn't exist yet.",
        },
        FeatureDisabled,
        "This feature doesn't exist yet.",
        id="unwrapped-5005",
    ),
    pytest.param(
        400,
        {"error": {"code": 5005, "message": "This feature doesn't exist yet."}},
        FeatureDisabled,
        "This feature doesn't exist yet.",
        id="wrapped-5005",
    ),
    pytest.param(
        403,
        {"error": {"message": "The algorithm-errors feature is disabled on this cluster"}},
        FeatureDisabled,
        "The algorithm-errors feature is disabled on this cluster",
        id="feature-disabled-message",
    ),
    pytest.param(
        400,
        {"error": {"code": 2002, "message": "Not authenticated"}},
        Unauthorized,
        "Not authenticated",
        id="400-code-2002",
    ),
    pytest.param(
        400,
        {"error": {"code": 2015, "message": "Invalid request"}},
        RequestRejected,
        "Invalid request",
        id="400-other-code",
    ),
    pytest.param(429, "Too Many Requests\n", RequestRejected, "Too Many Requests", id="429-text"),
    pytest.param(401, "", Unauthorized, "cluster answered 401 Unauthorized", id="401-empty"),
    pytest.param(
        500, HTML_500, Unavailable, "cluster answered 500: 500 Internal Server Error", id="500-html"
    ),
    pytest.param(
        503,
        {"error": {"code": 5001, "message": "upstream down"}},
        Unavailable,
        "cluster answered 503: upstream down",
        id="503-json",
    ),
    pytest.param(
        200,
        "<html><head><title>Sign in · Algorithmia</title></head><body>…</body></html>",
        BadResponse,
        "expected JSON, got text/html: Sign in · Algorithmia",
        id="200-html",
    ),
    pytest.param(
        200,
        {"records": []},
        BadResponse,
        "expected a JSON array of error records, got an object",
        id="200-object",
    ),
    pytest.param(200, b"null", BadResponse, "got null", id="200-null"),
    pytest.param(200, b"", BadResponse, "expected JSON, got an empty body", id="200-empty"),
    pytest.param(
        200,
        {"error": {"message": "query failed"}},
        BadResponse,
        "query failed",
        id="200-error-key",
    ),
    pytest.param(
        200,
        {"error": {"code": 2001, "message": "Caller is not authorized"}},
        Forbidden,
        "Caller is not authorized",
        id="200-error-key-code-2001",
    ),
]


def _respond(status: int, body: object) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.Response(status, content=body, headers={"Content-Type": "application/json"})
    if isinstance(body, str):
        content_type = "text/html" if body.startswith(("<", "<!")) else "text/plain"
        return httpx.Response(status, text=body, headers={"Content-Type": content_type})
    return httpx.Response(status, json=body)


@pytest.mark.parametrize(("status", "body", "error", "message"), ERROR_CASES)
async def test_each_error_body_raises_its_exception_with_the_servers_message(
    cluster: respx.MockRouter,
    http: httpx.AsyncClient,
    status: int,
    body: object,
    error: type[AlgorithmiaError],
    message: str,
) -> None:
    route = cluster.get(ERRORS_PATH).mock(return_value=_respond(status, body))
    client = AlgorithmiaClient(http, BASE, SIMPLE, attempts=1)

    with pytest.raises(AlgorithmiaError) as caught:
        await client.list_errors(ECHO)

    assert type(caught.value) is error
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.status == status
    assert route.call_count == 1


async def test_get_algorithm_string_error_is_not_found(
    cluster: respx.MockRouter, client: AlgorithmiaClient
) -> None:
    cluster.get("/v1/algorithms/hello/gone").respond(404, json={"error": "No such algorithm"})

    with pytest.raises(NotFound) as caught:
        await client.get_algorithm(OwnerName("hello", "gone"))

    assert caught.value.message == "No such algorithm"


async def test_a_long_text_body_is_cut_to_one_short_line(
    cluster: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    cluster.get(ERRORS_PATH).respond(502, text="Bad gateway\n" + "upstream said: no " * 50)
    client = AlgorithmiaClient(http, BASE, SIMPLE, attempts=1)

    with pytest.raises(Unavailable) as caught:
        await client.list_errors(ECHO)

    assert str(caught.value).startswith("cluster answered 502: Bad gateway upstream said: no")
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) <= 240


# Retries


async def test_a_5xx_is_retried_with_jittered_backoff_then_succeeds(
    cluster: respx.MockRouter, client: AlgorithmiaClient, sleeps: Sleeps
) -> None:
    route = cluster.get(ERRORS_PATH).mock(
        side_effect=[httpx.Response(503), httpx.Response(502), httpx.Response(200, json=RECORDS)]
    )

    batch = await client.list_errors(ECHO)

    assert len(batch.records) == len(RECORDS)
    assert route.call_count == 3
    assert len(sleeps.delays) == 2
    assert 0.125 <= sleeps.delays[0] <= 0.375  # 0.25 s × 2**0 × [0.5, 1.5]
    assert 0.25 <= sleeps.delays[1] <= 0.75  # 0.25 s × 2**1 × [0.5, 1.5]


async def test_the_backoff_is_jittered(
    cluster: respx.MockRouter, http: httpx.AsyncClient, sleeps: Sleeps
) -> None:
    cluster.get(ERRORS_PATH).respond(503)
    client = AlgorithmiaClient(http, BASE, SIMPLE, attempts=21, backoff_s=1.0, sleep=sleeps)

    with pytest.raises(Unavailable):
        await client.list_errors(ECHO)

    ratios = [delay / 2**i for i, delay in enumerate(sleeps.delays)]
    assert all(0.5 <= ratio <= 1.5 for ratio in ratios)
    assert len(set(ratios)) > 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout,
        httpx.ConnectTimeout,
        httpx.ConnectError,
        # A keep-alive connection the server closed while idle fails on reuse with these.
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
    ],
)
async def test_a_timeout_or_connect_error_or_dropped_connection_is_retried_then_succeeds(
    cluster: respx.MockRouter,
    client: AlgorithmiaClient,
    sleeps: Sleeps,
    failure: httpx.TransportError | type[httpx.TransportError],
) -> None:
    route = cluster.get(ERRORS_PATH).mock(
        side_effect=[failure, httpx.Response(200, json=RECORDS[:1])]
    )

    batch = await client.list_errors(ECHO)

    assert len(batch.records) == 1
    assert route.call_count == 2
    assert len(sleeps.delays) == 1
    assert 0.125 <= sleeps.delays[0] <= 0.375  # the same jittered backoff as for a 5xx


@pytest.mark.parametrize(
    "failure",
    [
        httpx.LocalProtocolError("Illegal header value"),
        httpx.UnsupportedProtocol("Request URL has an unsupported protocol"),
        httpx.ProxyError("407 Proxy Authentication Required"),
    ],
)
async def test_other_transport_errors_are_not_retried(
    cluster: respx.MockRouter,
    client: AlgorithmiaClient,
    sleeps: Sleeps,
    failure: httpx.TransportError,
) -> None:
    route = cluster.get(ERRORS_PATH).mock(side_effect=[failure])

    with pytest.raises(Unavailable) as caught:
        await client.list_errors(ECHO)

    assert str(caught.value) == f"request to {BASE}{ERRORS_PATH} failed: {failure}"
    assert route.call_count == 1
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("failure", "message"),
    [
        (httpx.Response(503), "cluster answered 503 Service Unavailable (tried 3 times)"),
        (
            httpx.ReadTimeout,
            f"timed out after 20 s waiting for {BASE}{ERRORS_PATH} (tried 3 times)",
        ),
        (httpx.ConnectTimeout, f"timed out after 5 s connecting to {BASE} (tried 3 times)"),
        (
            httpx.ConnectError("Name or service not known"),
            f"could not connect to {BASE}: Name or service not known (tried 3 times)",
        ),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            f"connection lost waiting for {BASE}{ERRORS_PATH}:"
            " Server disconnected without sending a response. (tried 3 times)",
        ),
        (
            httpx.ReadError("[Errno 104] Connection reset by peer"),
            f"connection lost waiting for {BASE}{ERRORS_PATH}:"
            " [Errno 104] Connection reset by peer (tried 3 times)",
        ),
    ],
)
async def test_exhausted_retries_raise_unavailable_saying_why(
    cluster: respx.MockRouter,
    client: AlgorithmiaClient,
    sleeps: Sleeps,
    failure: httpx.Response | Exception | type[Exception],
    message: str,
) -> None:
    route = cluster.get(ERRORS_PATH).mock(side_effect=[failure] * 3)

    with pytest.raises(Unavailable) as caught:
        await client.list_errors(ECHO)

    assert str(caught.value) == message
    assert route.call_count == 3
    assert len(sleeps.delays) == 2


DEEP = b"[" * 1100 + b"]" * 1100
"""Valid JSON nested deeper than `json.loads` reads by default (a caller's input can be)."""


async def test_a_record_with_a_deeply_nested_input_is_read_and_its_input_said_too_deep(
    cluster: respx.MockRouter, client: AlgorithmiaClient
) -> None:
    """One record whose input nests past Python's recursion limit: the response is read, the
    record kept (its input shown as too deep), not the whole answer refused."""
    record = json.dumps(RECORDS[0]).encode()[:-1] + b', "input": ' + DEEP + b"}"
    cluster.get(ERRORS_PATH).respond(200, content=b"[" + record + b"]")
    batch = await client.list_errors(ECHO)
    assert [(r.request_id, r.input) for r in batch.records] == [
        (RECORDS[0]["request_id"], "(a JSON value nested too deeply to show)")
    ]


async def test_an_answer_nested_too_deeply_to_read_says_so(
    cluster: respx.MockRouter, client: AlgorithmiaClient, sleeps: Sleeps
) -> None:
    deepest = b"[" * 20_000 + b"]" * 20_000
    cluster.get(ERRORS_PATH).respond(200, content=b"[" + deepest + b"]")
    with pytest.raises(BadResponse, match="nests deeper than it can be read"):
        await client.list_errors(ECHO)

    cluster.get(ERRORS_PATH).respond(503, content=b'{"error": ' + deepest + b"}")
    with pytest.raises(Unavailable, match="cluster answered 503"):  # retried, as any 503
        await client.list_errors(ECHO)
    assert len(sleeps.delays) == 2


@pytest.mark.parametrize(
    ("failure", "error", "message"),
    [
        pytest.param(
            httpx.TooManyRedirects("Exceeded maximum allowed redirects."),
            Unavailable,
            f"request to {BASE}{ERRORS_PATH} failed: Exceeded maximum allowed redirects.",
            id="redirect-loop",  # a sign-in proxy sending the bot round in circles
        ),
        pytest.param(
            httpx.DecodingError("Error -3 while decompressing data: incorrect header check"),
            BadResponse,
            f"the answer to {BASE}{ERRORS_PATH} could not be decoded: Error -3 while"
            " decompressing data: incorrect header check",
            id="corrupt-gzip",
        ),
    ],
)
async def test_a_request_that_cannot_end_well_is_told_not_retried(
    cluster: respx.MockRouter,
    client: AlgorithmiaClient,
    sleeps: Sleeps,
    failure: httpx.RequestError,
    error: type[AlgorithmiaError],
    message: str,
) -> None:
    route = cluster.get(ERRORS_PATH).mock(side_effect=[failure])

    with pytest.raises(error) as caught:
        await client.list_errors(ECHO)

    assert str(caught.value) == message
    assert (route.call_count, sleeps.delays) == (1, [])


async def test_each_retry_is_logged_with_the_path(
    cluster: respx.MockRouter,
    client: AlgorithmiaClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster.get(ERRORS_PATH).mock(side_effect=[httpx.Response(500), httpx.Response(200, json=[])])

    with caplog.at_level(logging.WARNING, logger="bot.algorithmia.client"):
        await client.list_errors(ECHO)

    [retry] = caplog.records
    assert retry.levelno == logging.WARNING
    assert ERRORS_PATH in retry.getMessage()
    assert "cluster answered 500" in retry.getMessage()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, RequestRejected),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (429, RequestRejected),
    ],
)
async def test_a_4xx_is_never_retried(
    cluster: respx.MockRouter,
    client: AlgorithmiaClient,
    sleeps: Sleeps,
    status: int,
    error: type[AlgorithmiaError],
) -> None:
    route = cluster.get(ERRORS_PATH).respond(status, json={"error": {"message": "no"}})

    with pytest.raises(error):
        await client.list_errors(ECHO)

    assert route.call_count == 1
    assert sleeps.delays == []


async def test_a_feature_disabled_5xx_is_not_retried(
    cluster: respx.MockRouter, client: AlgorithmiaClient, sleeps: Sleeps
) -> None:
    body = {"id": "dc7daff0", "code": 5005, "message": "This feature doesn't exist yet."}
    route = cluster.get(ERRORS_PATH).respond(501, json=body)

    with pytest.raises(FeatureDisabled):
        await client.list_errors(ECHO)

    assert route.call_count == 1
    assert sleeps.delays == []


# Secrets


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(401, json={"error": {"message": f"API key {KEY} is not valid"}}),
        httpx.Response(400, json={"error": f"bad header Simple {KEY}"}),
        httpx.Response(500, text=f"<html><title>crash for {KEY}</title></html>"),
        httpx.Response(200, text=f"welcome {KEY}", headers={"Content-Type": "text/plain"}),
        httpx.ConnectError(f"proxy refused Simple {KEY}"),
    ],
)
async def test_the_key_never_appears_in_an_error_or_a_log(
    cluster: respx.MockRouter,
    client: AlgorithmiaClient,
    caplog: pytest.LogCaptureFixture,
    failure: httpx.Response | Exception | type[Exception],
) -> None:
    cluster.get(ERRORS_PATH).mock(side_effect=[failure] * 3)

    with caplog.at_level(logging.DEBUG), pytest.raises(AlgorithmiaError) as caught:
        await client.list_errors(ECHO)

    assert KEY not in str(caught.value)
    assert KEY not in caught.value.message
    assert "[redacted]" in caught.value.message
    assert all(KEY not in record.getMessage() for record in caplog.records)


async def test_the_jwt_never_appears_in_an_error(
    cluster: respx.MockRouter, http: httpx.AsyncClient
) -> None:
    cluster.get(ERRORS_PATH).respond(401, json={"error": {"message": f"token {JWT} expired"}})
    client = AlgorithmiaClient(http, BASE, BEARER)

    with pytest.raises(Unauthorized) as caught:
        await client.list_errors(ECHO)

    assert JWT not in str(caught.value)
    assert str(caught.value) == "token [redacted] expired"
