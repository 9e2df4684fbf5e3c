"""Slack's posting limit kept on our side, and what a 429 teaches it.

Slack takes about one `chat.postMessage` a second per channel, with short bursts, and answers
HTTP 429 with `Retry-After` (whole seconds) beyond that (Slack's rate-limit documentation).
`ChannelPacer` spaces posts per channel; `PacingRetryHandler`, the Web API client's one retry
handler, waits out every 429 as often as Slack asks, and when the 429 answered a post it also
holds back the post's channel in the pacer, so the posts queued behind it wait too instead of
meeting their own 429s.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

_posting_to: contextvars.ContextVar[str | None] = contextvars.ContextVar("posting_to", default=None)
"""The channel the current task is posting in, for the retry handler to read."""


class ChannelPacer:
    """Per channel a burst of `burst` messages, then one per `interval_s` (a token bucket). One
    pacer serves the whole process (queries, digests, notices); channels do not wait for each
    other, and waiters keep their order."""

    def __init__(
        self,
        interval_s: float = 1.0,
        *,
        burst: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval, self._burst = interval_s, burst
        self._clock, self._sleep = clock, sleep
        self._buckets: dict[str, tuple[float, float]] = {}
        """Channel → (tokens, when they were counted)."""
        self._locks: dict[str, asyncio.Lock] = {}

    async def wait(self, channel: str) -> None:
        """Return when a post may go to `channel`, taking its place."""
        async with self._locks.setdefault(channel, asyncio.Lock()):
            while (tokens := self._tokens(channel)) < 1:  # a hold may come while waiting
                await self._sleep((1 - tokens) * self._interval)
            self._buckets[channel] = (min(tokens, 1.0 * self._burst) - 1, self._clock())

    def hold(self, channel: str, seconds: float) -> None:
        """Slack refused a post to `channel` for `seconds`: the refused post goes again after
        them (keeping its place: it does not wait here), the posts queued behind it an interval
        later, and the burst starts again from empty."""
        self._buckets[channel] = (-seconds / self._interval, self._clock())

    @contextmanager
    def posting_to(self, channel: str) -> Iterator[None]:
        """Mark the Web API calls made inside as posts to `channel` (read by the retry
        handler on a 429)."""
        token = _posting_to.set(channel)
        try:
            yield
        finally:
            _posting_to.reset(token)

    def _tokens(self, channel: str) -> float:
        now = self._clock()
        tokens, counted = self._buckets.get(channel, (float(self._burst), now))
        return min(float(self._burst), tokens + (now - counted) / self._interval)


class PacingRetryHandler(AsyncRateLimitErrorRetryHandler):
    """slack-sdk's rate-limit retry handler, told by the pacer where a refused post was going.

    A 429 is retried after its `Retry-After` (times `time_scale`, the real seconds of one of
    Slack's: 1 in production, less against a sped-up stand-in). A refused post also holds its
    channel in the pacer for that long; any other call waits with the handler's usual jitter.
    """

    def __init__(
        self, pacer: ChannelPacer, *, max_retry_count: int, time_scale: float = 1.0
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._pacer = pacer
        self._time_scale = time_scale

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:  # only 429s come here (`_can_retry_async`)
            raise error if error is not None else RuntimeError("no response to retry")
        state.next_attempt_requested = True
        seconds = _retry_after(response) * self._time_scale
        channel = _posting_to.get()
        if channel is not None and request.url.endswith("/chat.postMessage"):
            self._pacer.hold(channel, seconds)
            await asyncio.sleep(seconds)
        else:
            await asyncio.sleep(seconds + random.random() * self._time_scale)
        state.increment_current_attempt()


def _retry_after(response: HttpResponse) -> float:
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            try:
                return max(0.0, float(values[0]))
            except ValueError:
                break
    return 1.0
