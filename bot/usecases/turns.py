"""Turns for the heavy steps of pure computation, so a burst of them does not hold the process.

Fifty queries whose responses come back together each read 80 records and render 21 messages,
a few milliseconds each. Without turns the event loop runs all of them in the one iteration
where their answers arrived, and every ack, `/healthz` probe or Slack answer that comes in
meanwhile waits for the whole burst (bench/README.md: the ack's p99). With them, such steps
run one per iteration of the loop: between two, the loop reads its sockets and handles what
arrived, so a request waits for at most one step.
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
        """A step had its turn in the current iteration (the next one hands on)."""
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def take(self) -> None:
        """Return when the caller may run its step: at once if no other step ran in this
        iteration of the loop, else at a later iteration, after the steps asked for before."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or another loop (each test has its own)
            self._loop, self._taken, self._waiting = loop, False, deque()
        if not self._taken and not self._waiting:
            self._taken = True
            loop.call_soon(self._hand_on)  # runs at the next iteration, after its poll
            return
        turn = loop.create_future()
        self._waiting.append(turn)
        await turn  # a waiter cancelled meanwhile is skipped by `_hand_on`

    def _hand_on(self) -> None:
        """The next waiter's turn (its step runs at the iteration after this one), or none
        taken when nobody waits."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                assert self._loop is not None
                self._loop.call_soon(self._hand_on)
                return
        self._taken = False
