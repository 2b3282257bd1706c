"""The chaos run's figures and checks, from what the topics hold and what the run did."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmarks.chaos.ledger import Coord, account, outcome, uncommitted_window
from benchmarks.chaos.poison import Input


@dataclass(frozen=True)
class KillRecord:
    worker_id: str
    at_s: float
    committed: dict[int, int]  # the group's committed offsets read right after the kill
    snapshot_s: float  # how long reading them took (the partitions are frozen meanwhile)


@dataclass(frozen=True)
class StopRecord:
    """A worker SIGTERMed by the rebalance storm."""

    worker_id: str
    at_s: float
    committed: dict[int, int]  # the group's committed offsets read right after the SIGTERM
    exit_s: float | None  # seconds from the SIGTERM to its exit; None: killed, still alive
    code: int | None


@dataclass
class RunFacts:
    """What the run did, besides what the topics hold."""

    sent: dict[Coord, Input]
    answers: list[dict[str, Any]]
    kills: list[KillRecord]
    workers_started: int
    workers_initial: int
    redis_starts: int
    redis_restart_ms: int | None
    swap: dict[str, Any]
    tail: set[Coord]
    settled: bool  # committed offsets == high-water marks at the end
    health: dict[str, dict[str, Any]]  # surviving worker -> healthz, readyz, uncommitted ages
    exit_codes: dict[str, int | None]  # surviving worker -> exit code after SIGTERM
    min_kills: int
    partitions: int
    exits: list[dict[str, Any]]  # workers that exited on their own (restarted by the run)
    stops: list[StopRecord]  # the storm's SIGTERMs
    storm_cycles: int
    shutdown_timeout_s: float
    exit_slack_s: float
    control_poison: int  # records written to the control topic
    # poison sent to a trainer's jobs and feedback topics, its invalid answers, alive, exit code
    trainer: dict[str, Any] = field(default_factory=dict)


MAX_END_AGE_S = 5.0  # the oldest uncommitted event, once everything is committed


def healthy(health: Mapping[str, Mapping[str, Any]], partitions: int) -> bool:
    """Every worker answers 200 on /healthz and /readyz, and together they show an
    oldest-uncommitted-age gauge for every partition, none over MAX_END_AGE_S."""
    ages = [a for h in health.values() for a in h["oldest_uncommitted_age_s"].values()]
    owned = {p for h in health.values() for p in h["oldest_uncommitted_age_s"]}
    return (
        bool(health)
        and all(h["healthz"] == h["readyz"] == 200 for h in health.values())
        and len(owned) == partitions
        and max(ages, default=float("inf")) <= MAX_END_AGE_S
    )


def _outcomes(facts: RunFacts) -> dict[Coord, Counter[str]]:
    by_coord: dict[Coord, Counter[str]] = defaultdict(Counter)
    for a in facts.answers:
        by_coord[(int(a["source_partition"]), int(a["source_offset"]))][outcome(a)] += 1
    return by_coord


def judge(facts: RunFacts) -> tuple[dict[str, Any], dict[str, bool]]:
    """(figures, checks): every check must hold for the run to pass."""
    ledger = account({c: i.event_id for c, i in facts.sent.items()}, facts.answers)
    outcomes = _outcomes(facts)
    poison = Counter(i.kind for i in facts.sent.values() if i.kind != "good")
    poison_kinds: dict[str, Counter[str]] = defaultdict(Counter)
    good_dead: Counter[str] = Counter()
    poison_labelled: Counter[str] = Counter()
    for coord, record in facts.sent.items():
        got = outcomes.get(coord, Counter())
        if record.kind == "good":
            good_dead.update({k: n for k, n in got.items() if k != "labelled"})
        else:
            poison_kinds[record.kind].update(got)
            poison_labelled[record.kind] += got["labelled"]
    windows = [uncommitted_window(facts.answers, k.worker_id, k.committed) for k in facts.kills]
    # a SIGTERMed worker commits what it drained; what it could not is bounded the same way
    windows += [uncommitted_window(facts.answers, s.worker_id, s.committed) for s in facts.stops]
    exit_limit = facts.shutdown_timeout_s + facts.exit_slack_s
    exit_times = [s.exit_s for s in facts.stops]
    labelled = [a for a in facts.answers if "kind" not in a]
    versions = Counter(a["version"] for a in labelled)
    tail_versions = Counter(
        a["version"]
        for a in labelled
        if (int(a["source_partition"]), int(a["source_offset"])) in facts.tail
    )
    restart_ms = facts.redis_restart_ms or 2**62
    cached_after = sum(1 for a in labelled if a.get("cached") and a["_ts_ms"] > restart_ms)
    figures = {
        **ledger.figures(),
        "good_events": sum(1 for i in facts.sent.values() if i.kind == "good"),
        "poison": sum(poison.values()),
        "poison_by_class": dict(sorted(poison.items())),
        "dead_letter_kinds_by_poison_class": {k: dict(v) for k, v in sorted(poison_kinds.items())},
        "good_events_dead_lettered": dict(good_dead),
        "poison_labelled": sum(poison_labelled.values()),
        "kills": len(facts.kills),
        "sigterms": len(facts.stops),
        "sigterm_exit_s": {s.worker_id: s.exit_s for s in facts.stops},
        "sigterm_exit_s_max": max((t for t in exit_times if t is not None), default=None),
        "sigterm_exit_codes": dict(Counter(str(s.code) for s in facts.stops)),
        "control_poison": facts.control_poison,
        "trainer": facts.trainer,
        "restarts": facts.workers_started - facts.workers_initial,
        "redis_restarts": facts.redis_starts - 1,
        "swap": facts.swap,
        "outputs_by_version": dict(sorted(versions.items())),
        "tail_events_by_version": dict(tail_versions),
        "cached_outputs_after_redis_restart": cached_after,
        "uncommitted_windows": windows,
        "duplicate_bound": sum(windows),
        "kill_snapshot_max_s": round(max((k.snapshot_s for k in facts.kills), default=0.0), 2),
        "surviving_workers": facts.health,
        "exit_codes_after_sigterm": facts.exit_codes,
        "exited_on_their_own": facts.exits,
        "committed_equals_high_water": facts.settled,
    }
    swapped_to = facts.swap.get("version")
    ages = [a for h in facts.health.values() for a in h["oldest_uncommitted_age_s"].values()]
    owned = {p for h in facts.health.values() for p in h["oldest_uncommitted_age_s"]}
    figures["oldest_uncommitted_age_max_s"] = max(ages, default=None)
    checks = {
        "lost == 0": not ledger.lost,
        "no answer for an input never sent, none with a wrong id": not (
            ledger.unexpected or ledger.wrong_id
        ),
        "every good event labelled, every poison record dead-lettered": not (
            good_dead or poison_labelled.total() or ledger.mixed
        ),
        "duplicates <= sum of the killed workers' uncommitted windows": ledger.duplicates
        <= sum(windows),
        f"at least {facts.min_kills} kills, each restarted": len(facts.kills) >= facts.min_kills
        and facts.workers_started - facts.workers_initial
        == len(facts.kills) + len(facts.stops) + len(facts.exits),
        f"rebalance storm: {facts.storm_cycles} SIGTERMs, each worker gone within "
        f"{exit_limit:.0f} s": len(facts.stops) >= facts.storm_cycles
        and all(t is not None and t <= exit_limit for t in exit_times),
        "redis stopped and restarted once, cache used again": facts.redis_starts == 2
        and cached_after > 0,
        "hot swap accepted, the tail served by the new version": facts.swap.get("exit_code") == 0
        and bool(tail_versions)
        and set(tail_versions) == {swapped_to},
        "every surviving worker healthy and ready": bool(facts.health)
        and all(h["healthz"] == h["readyz"] == 200 for h in facts.health.values()),
        "oldest-uncommitted-age gauge for every partition, none over 5 s at the end": len(owned)
        == facts.partitions
        and max(ages, default=float("inf")) <= MAX_END_AGE_S,
        "every surviving worker exits 0 on SIGTERM": all(c == 0 for c in facts.exit_codes.values()),
        "no worker crashed (exits on its own only as a refusal to start, code 3)": all(
            e["code"] == 3 for e in facts.exits
        ),
        "nothing left to redo (committed == high-water)": facts.settled,
    }
    if facts.trainer:
        t = facts.trainer
        checks["the trainer answered every jobs/feedback poison record invalid, kept serving"] = (
            t.get("invalid") == t.get("poison") and bool(t.get("alive"))
        )
    return figures, checks


def summary(figures: Mapping[str, Any]) -> str:
    keys = ["events", "poison", "kills", "sigterms", "sigterm_exit_s_max", "restarts"]
    keys += ["redis_restarts", "outputs", "dead_letters", "duplicates", "duplicate_bound", "lost"]
    return ", ".join(f"{k} {figures[k]}" for k in keys)
