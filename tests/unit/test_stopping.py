"""worker/stopping.py: waits that end at the stop, and the stop budget."""

from __future__ import annotations

import asyncio
import time

import pytest

from worker.stopping import STEP_TIMEOUT_S, StopBudget, Stopped, unless_stopped


async def test_a_wait_that_finishes_first_gives_its_result() -> None:
    stop = asyncio.Event()
    assert await unless_stopped(asyncio.sleep(0, result=7), stop) == 7


async def test_a_stop_ends_a_wait_that_would_never_end_and_cancels_it() -> None:
    stop = asyncio.Event()
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.05, stop.set)
    with pytest.raises(Stopped):
        await asyncio.wait_for(unless_stopped(never, stop), 5)
    assert never.cancelled()


async def test_an_error_of_the_wait_is_raised() -> None:
    async def broken() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await unless_stopped(broken(), asyncio.Event())


def test_the_budget_keeps_a_reserve_for_teardown() -> None:
    budget = StopBudget(30.0)
    assert budget.step_s() == STEP_TIMEOUT_S and budget.drain_left_s() == float("inf")
    before = time.monotonic()
    budget.start()
    assert before + 30.0 <= budget.deadline <= time.monotonic() + 30.0
    assert budget.deadline - budget.drain_deadline == 5.0
    assert 0 < budget.step_s() <= 30.0
    short = StopBudget(3.0)
    short.start()
    assert short.deadline - short.drain_deadline == pytest.approx(1.0)
