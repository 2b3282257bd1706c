"""Shutdown from any state: the stop budget, waits that end at the stop, and the watchdog.

SIGTERM starts a budget of `STREAMCLF_SHUTDOWN_TIMEOUT_S`. Every wait of the worker (a model
load, joining the group, an assignment, a poll) races the stop event; draining in-flight
batches may use the budget less a reserve, and the steps after it (final commit, leaving the
group, flushing the producer) share what is left. A model load or a batch in a thread cannot
be cancelled, so a process-mode worker also arms a watchdog that ends the process at the
deadline: what is not committed by then is redone by the partitions' next owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Awaitable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

TEARDOWN_RESERVE_S = 5.0  # kept from the drain for commit, leave group, producer flush
STEP_TIMEOUT_S = 10.0  # a teardown step when no stop deadline is set (a failed start)
CANCEL_WAIT_S = 1.0  # how long a cancelled wait may take to unwind
EXIT_TIMED_OUT = 1


class Stopped(Exception):
    """The stop event was set before the awaited thing finished."""


async def unless_stopped(aw: Awaitable[T], stop: asyncio.Event) -> T:
    """`await aw`, unless `stop` is set first: then `aw` is cancelled and `Stopped` raised.
    A result that arrived together with the stop is still returned."""
    task = asyncio.ensure_future(aw)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=CANCEL_WAIT_S)
    if task.done() and not task.cancelled():
        return task.result()
    raise Stopped


class StopBudget:
    """When the stop was asked for, and how long each shutdown step may still take."""

    def __init__(self, timeout_s: float, hard_exit: bool = False) -> None:
        self.timeout_s = timeout_s
        self.hard_exit = hard_exit
        self.deadline = float("inf")  # the process is gone by then
        self.drain_deadline = float("inf")  # in-flight batches are given up by then
        self._timer: threading.Timer | None = None

    @property
    def started(self) -> bool:
        return self.deadline != float("inf")

    def start(self) -> None:
        """Start the budget (once); arm the watchdog when this is a process of its own."""
        if self.started:
            return
        now = time.monotonic()
        self.deadline = now + self.timeout_s
        self.drain_deadline = self.deadline - min(TEARDOWN_RESERVE_S, self.timeout_s / 3)
        if self.hard_exit:
            self._timer = threading.Timer(self.timeout_s, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def drain_left_s(self) -> float:
        return max(0.0, self.drain_deadline - time.monotonic())

    def step_s(self) -> float:
        """The bound of one teardown step: what is left of the budget (at least a moment)."""
        if not self.started:
            return STEP_TIMEOUT_S
        return max(0.1, self.deadline - time.monotonic())

    def _expire(self) -> None:
        log.error(
            "shutdown: still running %.0fs after the stop; exiting now "
            "(what is not committed is redone by the next owner)",
            self.timeout_s,
        )
        _flush_logs()
        os._exit(EXIT_TIMED_OUT)

    def exit_now(self, code: int) -> None:
        """After the teardown of a stop, end the process at once: not waiting for a thread
        that cannot be cancelled (a model load, a batch; it holds nothing to commit), nor for
        the interpreter's own finalization, which took 20 s on a crowded machine and during
        which the watchdog thread no longer runs."""
        if not (self.hard_exit and self.started):
            return
        busy = [t.name for t in threading.enumerate() if not t.daemon and t.is_alive()]
        busy = [n for n in busy if n != threading.main_thread().name]
        if busy:
            log.info("shutdown: not waiting for busy threads %s", busy)
        _flush_logs()
        os._exit(code)


async def bounded(aw: Awaitable[object], what: str, timeout_s: float) -> None:
    """A shutdown step that may not hold the exit: logged and given up after `timeout_s`."""
    try:
        await asyncio.wait_for(aw, timeout_s)
    except TimeoutError:
        log.warning("shutdown: %s took over %.1fs; going on without it", what, timeout_s)
    except Exception as exc:  # a teardown step that fails must not skip the next ones
        log.warning("shutdown: %s failed (%s: %s); going on", what, type(exc).__name__, exc)


def _flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
