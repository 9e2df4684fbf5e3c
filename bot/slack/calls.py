"""Every Web API call counted, whoever makes it: the sender, the notifier, and Bolt's own
per-request clients (which copy the retry handlers of the app's client).

slack-sdk hands each response, and each failure to get one, to the client's retry handlers
in turn; `CallCounter`, the first of them, counts it and never asks for a retry, so the
handlers after it (the 429 pacing) decide as before.
"""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

FILE_UPLOAD = "file_upload"
"""The label of the upload to the URL `files.getUploadURLExternal` gave (not a Web API URL)."""


def call_outcome(response: HttpResponse | None, error: Exception | None) -> str:
    """`ok`, `ratelimited` (a 429, retried after its `Retry-After`) or `error` (no answer, an
    HTTP error, or Slack's `"ok": false`)."""
    if error is not None or response is None:
        return "error"
    if response.status_code == 429:
        return "ratelimited"
    if response.status_code >= 400:
        return "error"
    body = response.body
    if isinstance(body, dict) and body.get("ok") is False:
        return "error"
    return "ok"


class CallCounter(AsyncRetryHandler):
    """Tells `count(method, outcome)` of each attempt of each call; retries nothing."""

    def __init__(self, base_url: str, count: Callable[[str, str], None]) -> None:
        super().__init__(max_retry_count=0)
        self._base_url, self._count = base_url, count

    def method(self, url: str) -> str:
        path = url.split("?", 1)[0]
        if path.startswith(self._base_url):
            return path.removeprefix(self._base_url).strip("/") or "?"
        return FILE_UPLOAD

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        self._count(self.method(request.url), call_outcome(response, error))
        return False
