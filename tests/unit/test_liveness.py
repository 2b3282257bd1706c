"""Liveness means progress: /healthz fails when the loop or a pipeline with work stops moving,
and the consume side never blocks forever on the full queue of a dead pipeline."""

import asyncio
import time
from typing import Any

from bus.types import TopicPartition
from schemas.events import TextEvent
from worker.checkpoint import Checkpoint
from worker.health import Liveness
from worker.intake import Intake
from worker.items import Item
from worker.routing import Router, parse_route
from worker.settings import WorkerSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Pipe:
    def __init__(self) -> None:
        self.model = "m"
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        self.busy_since: float | None = None
        self.last_progress = 1000.0


def test_healthy_while_everything_beats_and_idle_pipelines_are_fine() -> None:
    clock = Clock()
    live = Liveness(stall_s=30, clock=clock)
    pipe = Pipe()
    live.watch(pipe, None)
    live.consume_beat = clock.now
    clock.now += 100  # idle for long: no work waiting, nothing to say
    live.loop_beat = live.consume_beat = clock.now
    assert live.problem() is None


def test_a_stalled_pipeline_with_work_waiting_is_unhealthy() -> None:
    clock = Clock()
    live = Liveness(stall_s=30, clock=clock)
    pipe = Pipe()
    live.watch(pipe, None)
    pipe.queue.put_nowait(["batch"])
    clock.now += 31
    live.loop_beat = clock.now
    assert "pipeline m has 1 batches waiting" in (live.problem() or "")
    pipe.last_progress = clock.now
    assert live.problem() is None
    pipe.busy_since = clock.now
    clock.now += 31
    live.loop_beat = clock.now
    assert "pipeline m on one batch for 31s" in (live.problem() or "")


def test_a_blocked_loop_or_silent_consumer_or_dead_task_is_unhealthy() -> None:
    clock = Clock()
    live = Liveness(stall_s=30, clock=clock)
    live.consume_beat = clock.now
    clock.now += 40
    assert "event loop blocked" in (live.problem() or "")
    live.loop_beat = clock.now
    assert "consume loop silent for 40s" in (live.problem() or "")

    async def dead() -> None:
        pipe = Pipe()
        task = asyncio.create_task(asyncio.sleep(0))
        await task
        live.consume_beat = clock.now
        live.watch(pipe, task)
        assert live.problem() == "pipeline m stopped"

    asyncio.run(dead())


def test_dispatch_to_the_full_queue_of_a_dead_pipeline_returns() -> None:
    async def scenario() -> tuple[bool, float]:
        settings = WorkerSettings(routes=["t=m"])
        router = Router(settings.parsed_routes())
        live = Liveness(30)
        intake = Intake(settings, router, Checkpoint(lambda o: asyncio.sleep(0)), None, live)  # type: ignore[arg-type]
        pipe = Pipe()
        pipe.queue.put_nowait(["a batch nobody takes"])
        intake.pipelines = {"m": pipe}  # type: ignore[dict-item]

        async def dies() -> None:  # as the app's guard does: the failure is reported, it ends
            await asyncio.sleep(0.2)

        intake.tasks["m"] = asyncio.create_task(dies())
        route = parse_route("t=m")
        item = Item(
            TextEvent(id="a", text="x"),
            route,
            TopicPartition("t", 0),
            0,
            None,
            b"",
            0,
            time.monotonic(),
        )
        started = time.monotonic()
        queued = await intake.dispatch("m", [item])
        return queued, time.monotonic() - started

    queued, took = asyncio.run(scenario())
    assert queued is False and took < 10
