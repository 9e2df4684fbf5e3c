"""What the Slack stand-in checks before it carries out a Web API call: that the scopes it was
granted allow the method (`missing_scope`), and chat.postMessage's rate limit per channel (HTTP
429 with `Retry-After`).

Source: Slack's Web API documentation (chat.postMessage allows 1 post a second per
channel, "short bursts allowed"; over a limit Slack answers HTTP 429 with `Retry-After` in whole
seconds and `{"ok": false, "error": "ratelimited"}`) and Slack's method reference for the scopes
(`bot.slack.scopes.METHOD_SCOPES`): Slack refuses a call no granted scope allows with
`{"ok": false, "error": "missing_scope", "needed": "…", "provided": "…"}`, both comma-separated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.slack.scopes import METHOD_SCOPES
from bot.testing.slack_records import Refusal

# The first part of a per-kind scope name → whether it is the private channels' one.
_KIND_PREFIXES = {"channels": False, "groups": True}


TEST_SPEED = 100.0
"""The stand-in's clock runs this much faster than Slack's unless told otherwise: a second of
Slack's is 10 ms, so pacing and `Retry-After` waits keep the tests quick."""


@dataclass(frozen=True)
class RateLimit:
    """chat.postMessage's rate limit per channel, as a token bucket.

    A channel takes `burst` posts at once, then `per_second` posts a second. `speed` speeds the
    clock up for tests: the bucket refills `speed` times faster than wall-clock time, while the
    `Retry-After` answered stays in Slack's seconds (so a test honouring it waits
    `Retry-After / speed` seconds).
    """

    burst: int = 3
    per_second: float = 1.0
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.burst < 1 or self.per_second <= 0 or self.speed <= 0:
            raise ValueError(f"a rate limit needs burst ≥ 1 and positive rates: {self}")


LIKE_SLACK = RateLimit(speed=TEST_SPEED)
"""Slack's limit on the tests' clock: the stand-in's default."""


class PostRateLimits:
    """The token buckets of chat.postMessage, one per channel, each starting full."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """channel → (tokens, when they were counted)."""

    def take(self, channel: str) -> int | None:
        """Take a post's token from `channel`'s bucket: None if there was one, else the
        `Retry-After` Slack answers (whole seconds, at least 1) until there is one again.
        """
        now = self._clock()
        tokens, then = self._buckets.get(channel, (float(self.limit.burst), now))
        rate = self.limit.per_second * self.limit.speed
        tokens = min(float(self.limit.burst), tokens + (now - then) * rate)
        if tokens >= 1.0:
            self._buckets[channel] = (tokens - 1.0, now)
            return None
        self._buckets[channel] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.limit.per_second))


def check_scopes(method: str, granted: Iterable[str], *, private: bool | None = None) -> None:
    """Refuse with `missing_scope`, as Slack does, a call of `method` no `granted` scope allows.

    Where the method takes one scope per kind of conversation, only the kind's scope allows it:
    `private` says the channel's kind (None: unknown, any of them allows it). A method not in
    `METHOD_SCOPES` needs no scope here.
    """
    granted = tuple(granted)
    needed = scopes_needed(method, private=private)
    if needed and not set(needed) & set(granted):
        raise Refusal(
            "missing_scope", fields={"needed": ",".join(needed), "provided": ",".join(granted)}
        )


def scopes_needed(method: str, *, private: bool | None = None) -> tuple[str, ...]:
    """The scopes that allow `method` (any one suffices) on a channel of the kind `private`."""
    scopes = METHOD_SCOPES.get(method, ())
    if private is None:
        return scopes
    of_kind = tuple(s for s in scopes if _KIND_PREFIXES.get(s.split(":")[0]) is private)
    return of_kind or scopes
