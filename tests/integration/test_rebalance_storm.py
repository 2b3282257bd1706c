"""A rebalance storm: workers started and SIGTERMed every few seconds while events flow.

Three workers on four partitions; every cycle SIGTERMs the oldest and starts a new one, so
the group rebalances all the time and workers are stopped in every state (loading, joining,
waiting for an assignment, rebalancing, draining). Then one steady worker. Every SIGTERMed
process must be gone within STREAMCLF_SHUTDOWN_TIMEOUT_S (plus a little for the process to
end), every event id must reach the labelled topic, and the backlog must be done within a
stated bound after the storm.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bus.producing import sender
from tests.integration.harness import WorkerProcess, collect, make_topics, text_events

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SHUTDOWN_TIMEOUT_S = 10
EXIT_SLACK_S = 5  # interpreter teardown on a loaded machine, on top of the budget
CYCLES = 10
CYCLE_EVERY_S = 4.0
EVENTS = 1200
RATE_PER_S = 25.0
BACKLOG_BOUND_S = 120  # from the end of the storm to the last event labelled


async def _produce(broker, topic: str, values: list[bytes]) -> None:
    chunk = 5
    async with sender(broker) as s:
        for start in range(0, len(values), chunk):
            part = values[start : start + chunk]
            await s.send_many(topic, [(f"k{start + i}".encode(), v) for i, v in enumerate(part)])
            await asyncio.sleep(len(part) / RATE_PER_S)


@pytest.mark.timeout(480)
async def test_a_rebalance_storm_loses_nothing_and_every_sigterm_is_honoured(
    broker, tiny_store, uid, tmp_path
):
    topic, group = f"storm-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 4)
    env = {
        "STREAMCLF_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
        "STREAMCLF_ENGINE": "torch",
        "STREAMCLF_MAX_BATCH": "16",
        "STREAMCLF_COMMIT_INTERVAL_MS": "200",
        "STREAMCLF_CONTROL_TOPIC": f"storm-control-{uid}",
        "STREAMCLF_STATUS_TOPIC": f"storm-status-{uid}",
    }
    started: list[WorkerProcess] = []

    def start(n: int) -> WorkerProcess:
        worker = WorkerProcess(
            broker, tiny_store, [f"{topic}=news"], group, tmp_path, f"s{n}", env
        ).start()
        started.append(worker)
        return worker

    running = [start(i) for i in range(3)]
    stopped: list[WorkerProcess] = []
    try:
        deadline = time.monotonic() + 180
        while not any(w.log_has("assigned [") for w in running):
            assert time.monotonic() < deadline, "no worker joined the group"
            assert all(w.alive() for w in running), running[0].log()
            await asyncio.sleep(0.5)
        values = text_events(EVENTS, prefix=f"st{uid}-")
        producing = asyncio.create_task(_produce(broker, topic, values))
        watching = asyncio.create_task(_watch(stopped))
        for cycle in range(CYCLES):
            await asyncio.sleep(CYCLE_EVERY_S)
            await _started(running[-1])  # its SIGTERM handler is in place
            oldest = running.pop(0)
            oldest.signal_stop()
            stopped.append(oldest)
            running.append(start(3 + cycle))
            late = [w for w in stopped if _late(w)]
            assert not late, f"{late[0].worker_id} still alive:\n{late[0].log()}"
        storm_over = time.monotonic()
        for worker in running[:-1]:  # leave one steady worker
            worker.signal_stop()
            stopped.append(worker)
        steady = running[-1]
        await producing
        out = await collect(
            broker, [f"{topic}.labelled"], EVENTS, timeout_s=BACKLOG_BOUND_S, quiet_s=1
        )
        backlog_s = time.monotonic() - storm_over
        watching.cancel()
        exits = {}
        for worker in stopped:
            code, took = await asyncio.to_thread(
                worker.exits_within, SHUTDOWN_TIMEOUT_S + EXIT_SLACK_S
            )
            exits[worker.worker_id] = (code, round(took, 1))
        assert steady.alive(), steady.log()
    finally:
        for worker in started:
            if worker.alive():
                worker.kill()
    ids = {o["id"] for o in out}
    missing = [f"st{uid}-{i}" for i in range(EVENTS) if f"st{uid}-{i}" not in ids]
    assert not missing, f"{len(missing)} events not labelled, e.g. {missing[:5]}"
    slowest = max(took for _, took in exits.values())
    assert all(code in (0, 1) for code, _ in exits.values()), exits  # handled, not killed
    assert slowest <= SHUTDOWN_TIMEOUT_S + EXIT_SLACK_S, exits
    assert len(stopped) >= CYCLES + 2
    assert backlog_s <= BACKLOG_BOUND_S + 5
    figures = {"cycles": CYCLES, "events": EVENTS, "outputs": len(out), "exits": exits}
    print(f"\nrebalance storm: {figures}, backlog done {backlog_s:.1f}s after the storm")


async def _started(worker: WorkerProcess, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not worker.log_has("loading "):
        assert worker.alive(), worker.log()
        assert time.monotonic() < deadline, f"{worker.worker_id} did not start"
        await asyncio.sleep(0.2)


async def _watch(stopped: list[WorkerProcess]) -> None:
    """Notice each exit as it happens, so that the time to exit is measured, not the time
    until somebody looked."""
    while True:
        for worker in stopped:
            worker.exited_after_s()
        await asyncio.sleep(0.1)


def _late(worker: WorkerProcess) -> bool:
    took = worker.exited_after_s()
    waited = time.monotonic() - (worker.signalled_at or time.monotonic())
    return took is None and waited > SHUTDOWN_TIMEOUT_S + EXIT_SLACK_S
