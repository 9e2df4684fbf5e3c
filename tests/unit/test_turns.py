"""Heavy steps take turns: between two, the event loop reads its sockets, so a request that
arrives during a burst of them (fifty answers read at once) waits for one step, not all."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence

import pytest

from bot.algorithmia.client import AlgorithmInfo
from bot.domain.algorithm_ref import AlgorithmRef, OwnerName
from bot.domain.commands import Query, parse_command
from bot.errors.records import RecordBatch, validate_records
from bot.testing.sample_cluster import sample_records
from bot.usecases import query as query_usecase
from bot.usecases.turns import CpuTurns


class _Request:
    """A request the loop reads when it next polls its sockets (a byte on a socket pair), and
    how many steps `steps_run()` counted by then. Made before the burst, so it waits on its
    socket; `arrive()` sends it."""

    def __init__(self, steps_run: Callable[[], int]) -> None:
        self._listening, self._peer = socket.socketpair()
        self._listening.setblocking(False)
        self._steps_run = steps_run
        self._reading = asyncio.create_task(self._read())

    async def _read(self) -> int:
        await asyncio.get_running_loop().sock_recv(self._listening, 1)
        return self._steps_run()

    def arrive(self) -> None:
        self._peer.send(b"x")

    async def steps_before_read(self) -> int:
        return await self._reading

    def __enter__(self) -> _Request:
        return self

    def __exit__(self, *_: object) -> None:
        self._reading.cancel()
        self._listening.close()
        self._peer.close()


async def _steps_before_a_request_is_read(turns: CpuTurns, steps: int) -> tuple[int, list[int]]:
    """`steps` tasks ready at once, each taking a turn for its step; a request arrives before
    any of them ran. Returns how many steps ran before it was read, and the order in which
    they ran."""
    ran: list[int] = []

    async def step(number: int) -> None:
        await turns.take()
        ran.append(number)

    with _Request(lambda: len(ran)) as request:
        await asyncio.sleep(0)  # waiting on its socket
        burst = [asyncio.create_task(step(number)) for number in range(steps)]
        request.arrive()
        ran_before = await request.steps_before_read()
        await asyncio.gather(*burst)
    return ran_before, ran


async def test_a_request_arriving_during_a_burst_waits_for_one_step_not_all() -> None:
    ran_before, ran = await _steps_before_a_request_is_read(CpuTurns(), 10)
    assert ran_before <= 2  # without turns: all 10
    assert ran == list(range(10))  # in the order asked for


async def test_without_turns_the_request_waits_for_the_whole_burst() -> None:
    """The measure above can tell: steps that do not take turns all run first."""

    class NoTurns(CpuTurns):
        async def take(self) -> None:
            return None

    ran_before, _ = await _steps_before_a_request_is_read(NoTurns(), 10)
    assert ran_before == 10


async def test_a_step_cancelled_while_waiting_leaves_the_others_their_turns() -> None:
    turns = CpuTurns()
    ran: list[int] = []

    async def step(number: int) -> None:
        await turns.take()
        ran.append(number)

    tasks = [asyncio.create_task(step(number)) for number in range(4)]
    await asyncio.sleep(0)  # the first ran, the others wait
    tasks[2].cancel()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 1)
    assert ran == [0, 1, 3]
    assert isinstance(results[2], asyncio.CancelledError)


def test_a_turn_left_out_by_a_loop_that_stopped_does_not_hold_the_next_one() -> None:
    """One `CpuTurns` per process, but each test (and `asyncio.run`) has its own loop: a loop
    stopped right after a step took its turn never hands it on, and the next loop's steps
    must not wait for that."""
    turns = CpuTurns()
    stopped = asyncio.new_event_loop()
    try:
        taking = stopped.create_task(turns.take())
        stopped.call_soon(stopped.stop)  # the iteration of the step is the loop's last
        stopped.run_forever()
        assert taking.done()
    finally:
        stopped.close()

    async def steps() -> None:
        async with asyncio.timeout(1):
            await asyncio.gather(turns.take(), turns.take(), turns.take())

    asyncio.run(steps())


async def test_no_two_steps_share_an_iteration_when_a_step_is_asked_for_late() -> None:
    """A step granted its turn after waiting, and another asked for later in the iteration
    the first one runs in: the second waits for the next turn."""
    loop = asyncio.get_running_loop()
    turns = CpuTurns()
    iteration = 0
    ran: list[tuple[int, str]] = []

    def count() -> None:
        nonlocal iteration
        iteration += 1
        if len(ran) < 3:
            loop.call_soon(count)

    async def step(name: str, after: asyncio.Future[None] | None = None) -> None:
        if after is not None:
            await after
        await turns.take()
        ran.append((iteration, name))

    arrives = loop.create_future()
    loop.call_soon(count)
    late = asyncio.create_task(step("late", arrives))
    first, waiting = asyncio.create_task(step("first")), asyncio.create_task(step("waiting"))
    await asyncio.sleep(0)  # the first ran at once; the waiting one waits for the hand-on
    loop.call_soon(arrives.set_result, None)  # wakes the late one as the waiting one runs
    await asyncio.wait_for(asyncio.gather(first, waiting, late), 1)
    assert [name for _, name in ran] == ["first", "waiting", "late"]
    iterations = [number for number, _ in ran]
    assert len(set(iterations)) == 3  # one step per iteration


@pytest.mark.parametrize("steps", [1, 3])
async def test_turns_are_given_back_once_nobody_waits(steps: int) -> None:
    turns = CpuTurns()
    for _ in range(steps):
        await turns.take()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # Nobody waited: the next step runs at once, without waiting for an iteration.
    taken = asyncio.ensure_future(turns.take())
    await asyncio.sleep(0)
    assert taken.done()


class _AnswersTogether:
    """A cluster whose answers all come back in one iteration of the loop, once `release` is
    set: the burst fifty concurrent queries make."""

    def __init__(self, batch: RecordBatch) -> None:
        self.batch = batch
        self.release = asyncio.Event()

    async def list_errors(self, ref: AlgorithmRef) -> RecordBatch:
        await self.release.wait()
        return self.batch

    async def get_algorithm(self, ref: OwnerName) -> AlgorithmInfo:
        raise AssertionError("not asked")


@pytest.mark.parametrize(("turns", "read_first"), [(CpuTurns(), range(1, 3)), (None, [8])])
async def test_queries_answered_together_are_read_with_the_loop_turning_between(
    monkeypatch: pytest.MonkeyPatch, turns: CpuTurns | None, read_first: Sequence[int]
) -> None:
    """Eight queries whose answers arrive together: with the process's turns, a request that
    came in meanwhile is read after one or two of them are; without, after all eight (the
    measure can tell)."""
    cluster = _AnswersTogether(validate_records(sample_records(1_700_000_000_000)))
    query = parse_command("acme/image_tagger")
    assert isinstance(query, Query)
    read: list[int] = []
    summarize = query_usecase.summarize

    def counted(*args: object) -> object:
        read.append(1)
        return summarize(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(query_usecase, "summarize", counted)
    with _Request(lambda: len(read)) as request:
        queries = [
            asyncio.create_task(query_usecase.run_query(cluster, query, 1_700_000_000_000, turns))
            for _ in range(8)
        ]
        await asyncio.sleep(0)  # each waits for its answer, the request on its socket
        cluster.release.set()
        request.arrive()
        read_before = await request.steps_before_read()
        results = await asyncio.gather(*queries)
    assert read_before in read_first
    assert all(len(result.groups) == len(results[0].groups) > 1 for result in results)
