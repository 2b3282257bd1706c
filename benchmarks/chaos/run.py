"""The chaos run: workers SIGKILLed and restarted, Redis stopped and restarted, a hot swap,
poison records of every class mixed into the stream; then `verdict.judge` accounts for every
input from the output and dead-letter topics alone. `python -m benchmarks.chaos` drives it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from pathlib import Path
from typing import Any

from benchmarks.chaos.config import ChaosConfig, make_store, shutdown_timeout_s
from benchmarks.chaos.ledger import Coord
from benchmarks.chaos.poison import Input, control_poison, inputs
from benchmarks.chaos.services import STREAMCLF, RedisServer, Trainer, Worker, worker_argv
from benchmarks.chaos.verdict import KillRecord, RunFacts, StopRecord, healthy
from bus.control import ensure_control_topics
from bus.producing import sender
from bus.reading import StopWhen, iter_records, read_until_quiet
from bus.settings import KafkaSettings
from bus.topics import create_topics, high_water_marks

log = logging.getLogger("chaos")


class Chaos:
    def __init__(self, cfg: ChaosConfig, broker: KafkaSettings, store: Path, work: Path) -> None:
        self.cfg, self.broker, self.store, self.work = cfg, broker, store, work
        tag = f"{int(time.time())}-{random.Random().randrange(16**6):06x}"
        self.topic, self.group = f"chaos-{tag}", f"chaos-g-{tag}"
        self.outs = [f"{self.topic}.labelled", f"{self.topic}.dlq"]
        self.control, self.status = f"chaos-control-{tag}", f"chaos-status-{tag}"
        self.rng = random.Random(cfg.seed)
        self.redis = RedisServer(work)
        self.slots: dict[int, Worker] = {}
        self.incarnations: list[Worker] = []
        self.kills: list[KillRecord] = []
        self.sent: dict[Coord, Input] = {}
        self.answers: list[dict[str, Any]] = []
        self.timeline: list[tuple[float, str]] = []
        self.t0 = time.monotonic()
        self.produced_all = False
        self.redis_restart_ms: int | None = None
        self.swap: dict[str, Any] = {}
        self.tail: set[Coord] = set()
        self.exits: list[dict[str, Any]] = []  # workers that exited on their own
        self.stopping: list[tuple[Worker, float, float, dict[int, int]]] = []  # SIGTERMed
        self.stops: list[StopRecord] = []
        self.control_poison = 0
        self.jobs, self.feedback = f"chaos-jobs-{tag}", f"chaos-feedback-{tag}"
        self.results = f"chaos-results-{tag}"
        self.trainer: Trainer | None = None
        self.trainer_facts: dict[str, Any] = {}

    # -- helpers -------------------------------------------------------------------------
    def now(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    def note(self, what: str) -> None:
        self.timeline.append((self.now(), what))
        log.info("%7.1fs %s", self.now(), what)

    def answered(self) -> int:
        return len({(int(a["source_partition"]), int(a["source_offset"])) for a in self.answers})

    def start_worker(self, slot: int) -> Worker:
        env = {
            **self.cfg.worker_env,
            "STREAMCLF_REDIS_URL": self.redis.url,
            "STREAMCLF_CONTROL_TOPIC": self.control,
            "STREAMCLF_STATUS_TOPIC": self.status,
        }
        wid = f"w{slot}-{len(self.incarnations)}"
        argv = worker_argv(self.broker.bootstrap_servers, self.store, self.group, self.route)
        worker = Worker(wid, argv, env, self.work / "logs" / f"{wid}.log").start()
        self.slots[slot] = worker
        self.incarnations.append(worker)
        self.note(f"start {wid}")
        return worker

    @property
    def route(self) -> str:
        return f"{self.topic}=news"

    def supervise(self) -> None:
        """As an orchestrator would: a worker that exited on its own (not killed by this run)
        is recorded with its exit code and last log line, and started again."""
        for slot, w in list(self.slots.items()):
            if w.exited_on_its_own():
                assert w.proc is not None
                line = w.last_line()
                self.exits.append(
                    {
                        "worker_id": w.worker_id,
                        "code": w.proc.returncode,
                        "at_s": self.now(),
                        "line": line,
                    }
                )
                self.note(f"{w.worker_id} exited on its own ({w.proc.returncode}): {line}")
                self.start_worker(slot)

    async def wait_swapped(self, timeout_s: float) -> None:
        """Until every worker serves the swapped-in version (a worker started during the
        storm may still be applying the swap); the tail check then says what happened."""
        version = self.swap.get("version")
        wanted = f'streamclf_model_active{{model="news",version="{version}"}} 1.0'
        deadline = time.monotonic() + timeout_s
        while version and time.monotonic() < deadline:
            self.supervise()
            texts = [(await asyncio.to_thread(w.get, "/metrics"))[1] for w in self.slots.values()]
            if all(wanted in text for text in texts):
                return
            await asyncio.sleep(0.5)

    async def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.supervise()
            workers = list(self.slots.values())
            codes = [await asyncio.to_thread(w.http, "/readyz") for w in workers]
            if all(code == 200 for code in codes):
                return
            await asyncio.sleep(0.5)
        raise RuntimeError(f"workers not ready in {timeout_s}s")

    # -- the actors ----------------------------------------------------------------------
    async def produce(self, records: list[Input]) -> None:
        """Send at `rate_per_s`, in chunks; remember where each record went."""
        chunk = max(1, int(self.cfg.rate_per_s / 5))
        async with sender(self.broker) as s:
            for start in range(0, len(records), chunk):
                part = records[start : start + chunk]
                began = time.monotonic()
                acks = await s.send_many(self.topic, [(r.key, r.value) for r in part])
                self.sent.update(
                    ((a.partition, a.offset), r) for a, r in zip(acks, part, strict=True)
                )
                pause = len(part) / self.cfg.rate_per_s - (time.monotonic() - began)
                await asyncio.sleep(max(0.0, pause))

    async def produce_tail(self) -> None:
        """Events sent after the chaos: all must be labelled by the swapped-in version."""
        tail = list(inputs(self.cfg.tail_events, 0, prefix="tail"))
        async with sender(self.broker) as s:
            acks = await s.send_many(self.topic, [(r.key, r.value) for r in tail])
        for ack, record in zip(acks, tail, strict=True):
            self.sent[(ack.partition, ack.offset)] = record
            self.tail.add((ack.partition, ack.offset))
        self.note(f"tail of {len(tail)} events sent")

    async def collect(self) -> None:
        stop = StopWhen(quiet_s=None, timeout_s=self.cfg.timeout_s + 120)
        async for rec in iter_records(self.broker, self.outs, stop=stop):
            value = json.loads(rec.value or b"null")
            value["_ts_ms"] = rec.timestamp_ms
            self.answers.append(value)

    async def kill_one(self) -> None:
        ready = [
            (slot, w)
            for slot, w in sorted(self.slots.items())
            if w.alive() and await asyncio.to_thread(w.http, "/readyz") == 200
        ]
        if not ready:
            return
        slot, victim = self.rng.choice(ready)
        victim.kill()
        began = time.monotonic()
        infos = await high_water_marks(self.broker, self.topic, group_id=self.group)
        committed = {i.partition: i.committed or 0 for i in infos}
        snapshot_s = time.monotonic() - began
        self.kills.append(KillRecord(victim.worker_id, self.now(), committed, snapshot_s))
        self.note(f"SIGKILL {victim.worker_id}")
        await asyncio.sleep(self.cfg.restart_after_s)
        self.start_worker(slot)

    async def sigterm_one(self) -> None:
        """The storm: SIGTERM the oldest worker in whatever state it is (starting, joining,
        serving, draining) and start its successor at once."""
        live = [(slot, w) for slot, w in sorted(self.slots.items()) if w.alive()]
        if not live:
            return
        slot, victim = min(live, key=lambda sw: sw[1].started_at)
        victim.signal_stop()
        at = time.monotonic()
        infos = await high_water_marks(self.broker, self.topic, group_id=self.group)
        committed = {i.partition: i.committed or 0 for i in infos}
        self.stopping.append((victim, at, self.now(), committed))
        self.note(f"SIGTERM {victim.worker_id}")
        self.start_worker(slot)

    async def watch_stops(self) -> None:
        """Note each SIGTERMed worker's exit as it happens."""
        while True:
            self.reap_stopped(force=False)
            await asyncio.sleep(0.1)

    def reap_stopped(self, force: bool) -> None:
        """Record the SIGTERMed workers that exited; with `force`, kill the rest (no exit)."""
        for entry in list(self.stopping):
            worker, at, at_s, committed = entry
            assert worker.proc is not None
            if worker.alive() and not force:
                continue
            exit_s = None if worker.alive() else round(time.monotonic() - at, 2)
            if exit_s is None:
                worker.kill()
            self.stopping.remove(entry)
            rec = StopRecord(worker.worker_id, at_s, committed, exit_s, worker.proc.returncode)
            self.stops.append(rec)
            self.note(f"{worker.worker_id} exited {worker.proc.returncode} after {exit_s}s")

    async def wait_stopped(self) -> None:
        limit = shutdown_timeout_s(self.cfg) + self.cfg.exit_slack_s
        deadline = time.monotonic() + limit
        while self.stopping and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        self.reap_stopped(force=True)

    async def poison_control(self) -> None:
        records = control_poison()
        async with sender(self.broker) as s:
            await s.send_many(self.control, records)
        self.control_poison = len(records)
        self.note(f"{len(records)} poison records on the control topic")

    async def start_trainer_with_poison(self) -> None:
        """A `trainer serve` on private topics, sent the control poison on its jobs and its
        feedback topic: it must answer each `invalid` and keep serving."""
        topics = [self.jobs, self.feedback, self.results]
        await create_topics(self.broker, topics, 1)
        env = {
            "STREAMCLF_TRAINER_JOBS_TOPIC": self.jobs,
            "STREAMCLF_TRAINER_FEEDBACK_TOPIC": self.feedback,
            "STREAMCLF_TRAINER_RESULTS_TOPIC": self.results,
            "STREAMCLF_TRAINER_GROUP_ID": f"{self.group}-trainer",
            "STREAMCLF_TRAINER_DATA_ROOT": str(self.work / "data"),
            "STREAMCLF_TRAINER_FEEDBACK_THRESHOLD": "1000000",
            "STREAMCLF_CONTROL_TOPIC": self.control,
            "STREAMCLF_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "STREAMCLF_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        }
        argv = [STREAMCLF, "trainer", "serve", "-b", self.broker.bootstrap_servers]
        argv += ["--store", str(self.store)]
        self.trainer = Trainer(argv, env, self.work / "logs" / "trainer.log").start()
        records = control_poison()
        async with sender(self.broker) as s:
            await s.send_many(self.jobs, records)
            await s.send_many(self.feedback, records)
        self.trainer_facts["poison"] = 2 * len(records)
        self.note(f"trainer started; {len(records)} poison records on its jobs and feedback topics")

    async def trainer_answers(self) -> None:
        """What the trainer answered for its poison, whether it still runs, how it exits."""
        if self.trainer is None:
            return
        wanted = self.trainer_facts["poison"]
        records = await read_until_quiet(
            self.broker, [self.results], quiet_s=3.0, expected=wanted, timeout_s=120
        )
        results = [json.loads(r.value or b"null") for r in records]
        self.trainer_facts["invalid"] = sum(1 for r in results if r.get("status") == "invalid")
        self.trainer_facts["results"] = len(results)
        self.trainer_facts["alive"] = self.trainer.alive()
        self.trainer_facts["exit_code"] = await asyncio.to_thread(self.trainer.terminate, 30)
        self.note(f"trainer: {self.trainer_facts}")

    async def redis_outage(self) -> None:
        self.redis.stop()
        self.note("redis stopped")
        await asyncio.sleep(self.cfg.redis_down_s)
        await asyncio.to_thread(self.redis.start)
        self.redis_restart_ms = int(time.time() * 1000)
        self.note("redis restarted")

    async def hot_swap(self, version: str = "v2") -> None:
        argv = [STREAMCLF, "models", "swap", "news", version, "--store", str(self.store)]
        argv += ["-b", self.broker.bootstrap_servers, "--control-topic", self.control]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        self.swap = {"version": version, "exit_code": proc.returncode, "at_s": self.now()}
        self.note(f"swap news -> {version}: exit {proc.returncode} {out.decode()[-300:]}")

    # -- the run -------------------------------------------------------------------------
    async def chaos_loop(self, total: int, deadline: float) -> None:
        """Kill a ready worker every `kill_every_s` while the stream is being answered (and
        until `min_kills` happened); the Redis outage at ~30 % answered, the swap at ~50 %."""
        cfg = self.cfg
        next_kill = time.monotonic() + cfg.kill_every_s
        next_term = 0.0
        side: list[asyncio.Task[None]] = []
        while time.monotonic() < deadline:
            self.supervise()
            done = self.answered()
            finished = self.produced_all and done >= len(self.sent)
            storming = len(self.stops) + len(self.stopping) < cfg.storm_cycles
            if finished and len(self.kills) >= cfg.min_kills and not storming:
                break
            if storming and done >= cfg.storm_at * total and time.monotonic() >= next_term:
                await self.sigterm_one()
                next_term = time.monotonic() + cfg.storm_every_s
            if not self.redis_restart_ms and not side and done >= 0.3 * total:
                side.append(asyncio.create_task(self.redis_outage()))
            if not self.swap and done >= 0.5 * total:
                self.swap = {"pending": True}
                side.append(asyncio.create_task(self.hot_swap()))
            if time.monotonic() >= next_kill:
                await self.kill_one()
                next_kill = time.monotonic() + self.cfg.kill_every_s
            await asyncio.sleep(0.2)
        await asyncio.gather(*side)

    async def settle(self, deadline: float) -> bool:
        """Until the group has committed everything (nothing left to redo), then 2 s quiet."""
        while time.monotonic() < deadline:
            self.supervise()
            infos = await high_water_marks(self.broker, self.topic, group_id=self.group)
            if all((i.committed or 0) == i.high_water for i in infos):
                await asyncio.sleep(2.0)
                return True
            await asyncio.sleep(1.0)
        return False

    async def wait_answered(self, deadline: float) -> None:
        while time.monotonic() < deadline and self.answered() < len(self.sent):
            self.supervise()
            await asyncio.sleep(0.5)

    async def run(self) -> RunFacts:
        try:
            return await self._run()
        finally:  # whatever happened, leave no process behind
            for worker in self.incarnations:
                worker.kill()
            if self.trainer is not None and self.trainer.alive():
                self.trainer.terminate(10)
            self.redis.stop()

    async def _run(self) -> RunFacts:
        cfg = self.cfg
        deadline = self.t0 + cfg.timeout_s
        await create_topics(self.broker, [self.topic, *self.outs], cfg.partitions)
        await ensure_control_topics(self.broker, self.control, self.status)
        if cfg.control_poison:
            await self.poison_control()
        if cfg.trainer_poison:
            await self.start_trainer_with_poison()
        await asyncio.to_thread(self.redis.start)
        for slot in range(cfg.workers):
            self.start_worker(slot)
        await self.wait_ready(180)
        self.note("all workers ready")
        records = list(inputs(cfg.events, cfg.poison_every, distinct_texts=cfg.distinct_texts))
        collector = asyncio.create_task(self.collect())
        producer = asyncio.create_task(self.produce(records))
        producer.add_done_callback(lambda _: setattr(self, "produced_all", True))
        watcher = asyncio.create_task(self.watch_stops())
        try:
            await self.chaos_loop(len(records), deadline)
            await producer
            complete = self.answered() >= len(self.sent)
            self.note("chaos over; every input answered" if complete else "deadline reached")
            await self.wait_ready(max(10.0, deadline - time.monotonic()))
            await self.wait_swapped(max(10.0, deadline - time.monotonic()))
            await self.produce_tail()
            await self.wait_answered(deadline)
            settled = await self.settle(deadline)
        finally:
            producer.cancel()
            collector.cancel()
            watcher.cancel()
            await asyncio.gather(producer, collector, watcher, return_exceptions=True)
            await self.wait_stopped()
        health = await self.health()
        await self.trainer_answers()
        for worker in self.slots.values():  # all at once: they leave the group together
            worker.signal_stop()
        exits = {w.worker_id: w.terminate(45) for w in self.slots.values()}
        self.note("surviving workers stopped")
        self.redis.stop()
        return RunFacts(
            sent=self.sent,
            answers=self.answers,
            kills=self.kills,
            workers_started=len(self.incarnations),
            workers_initial=cfg.workers,
            redis_starts=self.redis.starts,
            redis_restart_ms=self.redis_restart_ms,
            swap=self.swap,
            tail=self.tail,
            settled=settled,
            health=health,
            exit_codes=exits,
            min_kills=cfg.min_kills,
            partitions=cfg.partitions,
            exits=self.exits,
            stops=self.stops,
            storm_cycles=cfg.storm_cycles,
            shutdown_timeout_s=shutdown_timeout_s(cfg),
            exit_slack_s=cfg.exit_slack_s,
            control_poison=self.control_poison,
            trainer=self.trainer_facts,
        )

    async def health(self, timeout_s: float = 30.0) -> dict[str, dict[str, Any]]:
        """The surviving workers' health, read until it is all good (a group still settling
        after the last restart may briefly own fewer partitions) or `timeout_s` passed."""
        began = time.monotonic()
        while True:
            report = await self._health_once()
            waited = time.monotonic() - began
            if healthy(report, self.cfg.partitions) or waited > timeout_s:
                self.note(f"health read after {waited:.1f}s: {report}")
                return report
            await asyncio.sleep(1.0)

    async def _health_once(self) -> dict[str, dict[str, Any]]:
        """Per surviving worker: /healthz and /readyz status, and its per-partition
        `streamclf_oldest_uncommitted_age_seconds` gauges."""
        report: dict[str, dict[str, Any]] = {}
        for w in self.slots.values():
            _, text = await asyncio.to_thread(w.get, "/metrics")
            report[w.worker_id] = {
                "healthz": await asyncio.to_thread(w.http, "/healthz"),
                "readyz": await asyncio.to_thread(w.http, "/readyz"),
                "oldest_uncommitted_age_s": uncommitted_ages(text),
            }
        return report


def uncommitted_ages(metrics_text: str) -> dict[str, float]:
    """partition -> age from a worker's /metrics text."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        sample.labels.get("partition", "?"): sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "streamclf_oldest_uncommitted_age_seconds"
        for sample in family.samples
    }


async def chaos_report(cfg: ChaosConfig, broker: KafkaSettings, work: Path) -> dict[str, Any]:
    """Run the chaos and judge it; the payload of chaos.json (`ok` says whether it passed)."""
    from benchmarks.chaos.verdict import judge

    began = time.monotonic()
    chaos = Chaos(cfg, broker, make_store(work / "store"), work)
    facts = await chaos.run()
    figures, checks = judge(facts)
    return {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": round(time.monotonic() - began, 1),
        "ok": all(checks.values()),
        "checks": checks,
        "figures": figures,
        "config": {k: v for k, v in vars(cfg).items()},
        "kills": [vars(k) for k in facts.kills],
        "timeline": chaos.timeline,
        "logs": str(work / "logs"),
    }
