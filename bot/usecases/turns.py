"""Turns for the heavy steps of pure computation, so a burst of them does not hold the process.

Fifty queries whose responses come back together each read 80 records and render 21 messages,
a few milliseconds each. Without turns the event loop runs all of them in the one iteration
where their answers arrived, and every ack, `/healthz` probe or Slack answer that comes in
meanwhile waits for the whole burst (bench/README.md: the ack's p99). With them, such steps
run one at a time, the loop turning between two (a step every other iteration while they
queue): between two, the loop reads its sockets and handles what arrived, so a request waits
for at most one step.
"""

from __future__ import annotations

import asyncio
from collections import deque


class CpuTurns:
    """At most one heavy step per iteration of the event loop, in the order asked for. One
    per process: the query answers and the digest run share it."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._taken = False
        """A turn is out: its step runs in this iteration or the next, and `_hand_on` runs
        at the iteration after the step's."""
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def take(self) -> None:
        """Return when the caller may run its step: at once if no turn is out, else at a
        later iteration, after the steps asked for before."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # First use, or another loop after this one stopped (each test has its own): a
            # turn left out by a stopped loop is never handed on there.
            self._loop, self._taken, self._waiting = loop, False, deque()
        if not self._taken and not self._waiting:
            self._taken = True
            loop.call_soon(self._hand_on)  # runs at the next iteration, after its poll
            return
        turn = loop.create_future()
        self._waiting.append(turn)
        try:
            await turn
        finally:
            if turn.done() and not turn.cancelled():
                # Granted (the step runs now, or the task was cancelled before it ran): the
                # next turn at the iteration after this one, so no two steps share one.
                loop.call_soon(self._hand_on)
            # Cancelled while waiting: skipped by `_hand_on`.

    def _hand_on(self) -> None:
        """The next waiter's turn (its task hands on after its step), or the turn back in
        when nobody waits."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self._taken = False
